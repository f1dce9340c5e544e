/**
 * Container options of issue 11 through real runc and crun: devices and device cgroup rules, capabilities,
 * privileged, init, hostname, extra hosts, DNS, sysctls, ulimits, /dev/shm size, extra groups, labels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isKind } from '../../src/errors.ts';
import { capabilitiesOfMask } from '../../src/oci/capabilities.ts';
import { DeviceNotPresentError } from '../../src/runtime/devices.ts';
import { readLogTail } from '../../src/runtime/logs.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { DEFAULT_CAPABILITIES } from '../../src/runtime/spec.ts';
import { bindRootfs, cleanup, request, runtimeBinary, runtimeFixture, until } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));

for (const which of ['runc', 'crun'] as const) {
  describe(`container options (${which})`, () => {
    let root: string;
    let rt: Runtime;
    let rootfs: string;
    const id = `${which}-${process.pid}`;

    beforeAll(async () => {
      ({ root, rootfs, rt } = await runtimeFixture(`options-${which}`, { binary: (dir) => runtimeBinary(which, dir) }));
      for (const a of ['wc', 'grep', 'df', 'mknod', 'ps', 'od']) await symlink('busybox', path.join(rootfs, 'bin', a));
      if (!existsSync('/usr/bin/tini-static')) throw new Error('/usr/bin/tini-static missing: apt-get install tini');
    });
    afterAll(async () => cleanup(rt, root));

    type Over = Parameters<typeof request>[2];
    const runToExit = async (name: string, script: string, over: Over = {}): Promise<string> => {
      await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', script], ...over }));
      await rt.start(name);
      await until(
        async () => {
          const s = await rt.status(name);
          return s.state === 'exited' && s;
        },
        20_000,
        `${name} to exit`,
      );
      return (await readLogTail(rt.containerDir(name))).toString();
    };
    /** A char device node made here, with the numbers of a host device. */
    const mknod = (name: string, major: number, minor: number) => {
      const p = path.join(root, name);
      execFileSync('mknod', [p, 'c', String(major), String(minor)]);
      return p;
    };

    it('devices: the node is created in the container and its device cgroup allows it; a bind mount of it is refused', async () => {
      const zero = mknod('myzero', 1, 5); // /dev/zero's numbers
      const log = await runToExit(`dev-${id}`, 'dd if=/dev/mydev bs=4 count=1 2>/dev/null | wc -c', {
        devices: [{ path: zero, target: '/dev/mydev', permissions: 'r' }],
      });
      expect(log.trim()).toBe('4');
      expect(await runToExit(`nodev-${id}`, '[ -e /dev/mydev ] && echo present || echo absent')).toBe('absent\n');

      // loop-control's numbers: a device runc does not allow by default, so the cgroup decides.
      const lc = mknod('mylc', 10, 237);
      const script = 'dd if=/dev/lc of=/dev/null count=0 2>&1 && echo opened';
      expect(await runToExit(`devcg-${id}`, script, { devices: [{ path: lc, target: '/dev/lc', permissions: 'rw' }] })).toContain('opened');
      // What examples/sensor-pipeline did before: bind-mount the node. The device cgroup refuses it.
      const bound = await runToExit(`devbind-${id}`, script, { mounts: [{ type: 'bind', source: lc, target: '/dev/lc', readOnly: false }] });
      expect(bound).toContain('Operation not permitted');
      expect(bound).not.toContain('opened');
    });

    it('devices: a directory gives every device under it (as docker run --device /dev/dri does)', async () => {
      const dir = path.join(root, 'dri');
      execFileSync('mkdir', ['-p', path.join(dir, 'by-path')]);
      mknod('dri/card0', 1, 5);
      mknod('dri/by-path/render', 1, 5);
      const log = await runToExit(`devdir-${id}`, 'for d in /dev/gpu/card0 /dev/gpu/by-path/render; do dd if=$d bs=2 count=1 2>/dev/null | wc -c; done', {
        devices: [{ path: dir, target: '/dev/gpu', permissions: 'rw' }],
      });
      expect(log.trim().split('\n')).toEqual(['2', '2']);
    });

    it('deviceCgroupRules: a node made after start is usable; without the rule it is refused', async () => {
      const script = 'mknod /dev/late c 10 237 && dd if=/dev/late of=/dev/null count=0 2>&1 && echo opened';
      expect(await runToExit(`cgrule-${id}`, script, { deviceCgroupRules: ['c 10:* rwm'] })).toContain('opened');
      expect(await runToExit(`nocgrule-${id}`, script)).toContain('Operation not permitted');
    });

    it('a device missing on the host: FailedPrecondition "device … not present", nothing created', async () => {
      const missing = path.join(root, 'ttyUSB0');
      const err = await rt
        .create(request(`missing-${id}`, bindRootfs(rootfs), { devices: [{ path: missing, target: '/dev/ttyUSB0', permissions: 'rwm' }] }))
        .then(
          () => undefined,
          (e) => e,
        );
      expect(isKind(err, 'FailedPrecondition'), String(err)).toBe(true);
      expect(err.message).toBe(`device ${missing} not present`);
      expect(err.place).toEqual({ file: missing });
      expect(err).toBeInstanceOf(DeviceNotPresentError);
      expect(err.device).toBe(missing);
      expect(existsSync(rt.containerDir(`missing-${id}`))).toBe(false);
      // Plugged in later: the same request succeeds.
      mknod('ttyUSB0', 1, 5);
      await rt.create(request(`missing-${id}`, bindRootfs(rootfs), { devices: [{ path: missing, target: '/dev/ttyUSB0', permissions: 'rwm' }] }));
    });

    const capEff = (log: string) => capabilitiesOfMask(/CapEff:\s*([0-9a-f]+)/.exec(log)![1]!).sort();

    it('capAdd and capDrop change CapEff; capDrop ALL leaves only what capAdd adds; privileged gets every capability', async () => {
      const added = await runToExit(`caps-${id}`, 'grep CapEff /proc/self/status', {
        capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_TIME'],
        capDrop: ['CAP_CHOWN', 'CAP_NET_RAW'],
      });
      expect(capEff(added)).toEqual([...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_NET_RAW'), 'CAP_NET_ADMIN', 'CAP_SYS_TIME'].sort());
      const only = await runToExit(`capsall-${id}`, 'grep CapEff /proc/self/status', { capDrop: ['ALL'], capAdd: ['CAP_NET_BIND_SERVICE'] });
      expect(capEff(only)).toEqual(['CAP_NET_BIND_SERVICE']);
      const hostBounding = capabilitiesOfMask(/CapBnd:\s*([0-9a-f]+)/.exec(await readFile('/proc/self/status', 'utf8'))![1]!).sort();
      const priv = await runToExit(`priv-${id}`, 'grep CapEff /proc/self/status; [ -e /dev/loop0 ] && echo has-host-devices; grep Seccomp: /proc/self/status', {
        privileged: true,
      });
      expect(capEff(priv)).toEqual(hostBounding);
      expect(priv).toContain('has-host-devices');
      expect(priv).toMatch(/Seccomp:\s+0/);
    });

    it('init: a tiny init is PID 1, reaps the orphans the app leaves, and passes SIGTERM on', async () => {
      // The app leaves an orphan behind and never waits for children: without an init the orphan,
      // reparented to the app as PID 1, stays a zombie for good.
      const app = (marker: string) => [
        '/bin/sh',
        '-c',
        `sh -c "sleep 0.2 && touch /tmp/${marker} &"; trap "echo got-term; exit 0" TERM; while true; do sleep 0.05; done`,
      ];
      const descendants = async (pid: number): Promise<number[]> => {
        const kids = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
        return [pid, ...(await Promise.all(kids.map(descendants))).flat()];
      };
      const zombies = async (pid1: number) => {
        const out: number[] = [];
        for (const p of await descendants(pid1)) if (/\) Z /.test(await readFile(`/proc/${p}/stat`, 'utf8').catch(() => ''))) out.push(p);
        return out;
      };
      const orphanDone = (marker: string) => until(async () => existsSync(path.join(rootfs, 'tmp', marker)), 10_000, `${marker}`);

      // (PID 1 here is `sleep`, which never waits: busybox sh, waiting for its own children with
      // waitpid(-1), would reap the orphan itself now and then, and the zombie would not stay.)
      const bare = `noinit-${id}`;
      await rt.create(request(bare, bindRootfs(rootfs), { args: ['/bin/sh', '-c', `sh -c "sleep 0.2 && touch /tmp/orphan-${bare} &"; exec sleep 1000`] }));
      const bareStarted = await rt.start(bare);
      await orphanDone(`orphan-${bare}`);
      await until(async () => (await zombies(bareStarted.pid!)).length > 0, 10_000, 'the zombie the scenario makes without an init');

      const name = `init-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { init: true, args: app(`orphan-${name}`) }));
      const st = await rt.start(name);
      expect((await readFile(`/proc/${st.pid}/cmdline`, 'utf8')).split('\0')[0]).toBe('/dev/init');
      await orphanDone(`orphan-${name}`);
      await until(async () => (await zombies(st.pid!)).length === 0, 10_000, 'no zombies under the init');
      await rt.stop(name, { gracePeriodMs: 10_000 });
      expect((await readLogTail(rt.containerDir(name))).toString()).toContain('got-term');
      expect((await rt.status(name)).exit).toMatchObject({ exitCode: 0, signal: 0 });
    });

    it('hostname, extraHosts and dns are what the container sees; the host keeps its hostname', async () => {
      const log = await runToExit(`names-${id}`, 'hostname; cat /etc/hostname; grep broker /etc/hosts; cat /etc/resolv.conf', {
        hostname: 'sensor-7',
        extraHosts: ['broker.local:192.168.1.10'],
        dns: ['192.168.1.1'],
      });
      const [h1, h2, hostsLine, ...resolv] = log.trim().split('\n');
      expect([h1, h2, hostsLine]).toEqual(['sensor-7', 'sensor-7', '192.168.1.10\tbroker.local']);
      expect(resolv.filter((l) => l.startsWith('nameserver'))).toEqual(['nameserver 192.168.1.1']);
      expect(os.hostname()).not.toBe('sensor-7');
    });

    it('sysctls, ulimits, shmSize and groupAdd are visible inside', async () => {
      const log = await runToExit(
        `knobs-${id}`,
        [
          'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni',
          'ulimit -Sn; ulimit -Hn; ulimit -c',
          'df -k /dev/shm | tail -1',
          'id -G',
        ].join('; '),
        {
          network: 'none',
          sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shmmni': '1000' },
          ulimits: { nofile: { soft: 4096, hard: 8192 }, core: { soft: 0, hard: 0 } },
          shmSizeBytes: 8 * 1024 * 1024,
          groupAdd: ['staff', '1234'],
        },
      );
      const lines = log.trim().split('\n');
      expect(lines.slice(0, 5)).toEqual(['0', '1000', '4096', '8192', '0']);
      expect(lines[5]).toMatch(/\s8192\s/);
      expect(lines[6]).toBe('0 50 1234');
    });

    it('tty: the process has a terminal and its output reaches the log; without tty it has none', async () => {
      const script = '[ -t 0 ] && [ -t 1 ] && echo has-a-terminal || echo no-terminal; tty';
      const withTty = await runToExit(`tty-${id}`, script, { tty: true });
      expect(withTty).toMatch(/^has-a-terminal\r\n\/dev\/pts\/\d+\r\n$/);
      expect(await runToExit(`notty-${id}`, script)).toBe('no-terminal\nnot a tty\n');
    });

    it('labels are recorded in the bundle and shown by berth inspect and ps --json', async () => {
      const name = `labels-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { labels: { 'com.example.team': 'field' } }));
      const bundle = JSON.parse(await readFile(path.join(rt.containerDir(name), 'config.json'), 'utf8'));
      expect(bundle.annotations).toEqual({ 'com.example.team': 'field' });
      await writeFile(path.join(root, 'none.toml'), '');
      const { stdout } = await promisify(execFile)(BERTH, ['--config', path.join(root, 'none.toml'), '--root', rt.root, 'inspect', name, '--json'], {
        encoding: 'utf8',
      });
      expect(JSON.parse(stdout).labels).toEqual({ 'com.example.team': 'field' });
      const ps = await promisify(execFile)(BERTH, ['--config', path.join(root, 'none.toml'), '--root', rt.root, 'ps', '--json'], { encoding: 'utf8' });
      expect(JSON.parse(ps.stdout).find((r: { name: string }) => r.name === name).labels).toEqual({ 'com.example.team': 'field' });
    });
  });
}
