/**
 * The defaults every container gets, through real runc and crun (issue 8 item 7): a seccomp allowlist
 * (calls outside it refused, ordinary programs unaffected), RLIMIT_NOFILE 1024 soft / 524288 hard,
 * and a pids limit in the container's cgroup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { readLogTail } from '../../src/runtime/logs.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { nofileCeiling } from '../../src/runtime/host-limits.ts';
import { bindRootfs, cleanup, request, runtimeBinary, runtimeFixture, until } from './helpers.ts';
import { installSysprobe } from './probe.ts';

for (const which of ['runc', 'crun'] as const) {
  describe(`container defaults (${which})`, () => {
    let root: string;
    let rt: Runtime;
    let rootfs: string;
    const id = `${which}-${process.pid}`;

    beforeAll(async () => {
      ({ root, rootfs, rt } = await runtimeFixture(`defaults-${which}`, { binary: (dir) => runtimeBinary(which, dir) }));
      installSysprobe(rootfs);
      for (const a of ['httpd', 'wget']) await symlink('busybox', path.join(rootfs, 'bin', a));
    });
    afterAll(async () => cleanup(rt, root));

    const runToExit = async (name: string, args: string[], over: Parameters<typeof request>[2] = {}): Promise<string> => {
      await rt.create(request(name, bindRootfs(rootfs), { args, ...over }));
      await rt.start(name);
      const st = await until(
        async () => {
          const s = await rt.status(name);
          return s.state === 'exited' && s;
        },
        20_000,
        `${name} to exit`,
      );
      const log = (await readLogTail(rt.containerDir(name))).toString();
      expect(st.exit!.exitCode, log).toBe(0);
      return log;
    };

    it('seccomp is an allowlist: io_uring, NUMA, the new mount API and unknown calls are refused; sh and httpd work', async () => {
      const log = await runToExit(`seccomp-allow-${id}`, [
        '/bin/sysprobe',
        'io_uring_setup',
        'mbind',
        'get_mempolicy',
        'fspick',
        'mount_setattr',
        'keyctl',
        'unknown',
        'getpid',
      ]);
      expect(log).toBe(
        [
          'io_uring_setup=EPERM',
          'mbind=EPERM',
          'get_mempolicy=EPERM',
          'fspick=EPERM',
          'mount_setattr=EPERM',
          'keyctl=EPERM',
          'unknown=ENOSYS',
          'getpid=ok',
          '',
        ].join('\n'),
      );

      const port = 20_000 + (process.pid % 20_000);
      const web = await runToExit(`seccomp-httpd-${id}`, [
        '/bin/sh',
        '-c',
        [
          'mkdir -p /tmp/www && echo served-through-the-filter > /tmp/www/index.html',
          `httpd -p 127.0.0.1:${port} -h /tmp/www`,
          `i=0; until wget -q -O - http://127.0.0.1:${port}/; do i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1; done`,
        ].join(' && '),
      ]);
      expect(web).toContain('served-through-the-filter');
    });

    it('capabilities open the calls they govern: CAP_SYS_TIME lets settimeofday through the filter', async () => {
      // settimeofday(NULL, NULL) changes nothing; without the capability the filter refuses it first.
      const without = await runToExit(`seccomp-nocap-${id}`, ['/bin/sysprobe', 'settimeofday']);
      expect(without).toBe('settimeofday=EPERM\n');
      const withCap = await runToExit(`seccomp-cap-${id}`, ['/bin/sysprobe', 'settimeofday'], { capAdd: ['CAP_SYS_TIME'] });
      expect(withCap).toBe('settimeofday=ok\n');
    });

    it('RLIMIT_NOFILE is 1024 soft and 524288 hard (or the hard limit berth itself is held to)', async () => {
      const ceiling = await nofileCeiling();
      const hard = Math.min(524_288, ceiling ?? Infinity);
      const log = await runToExit(`nofile-${id}`, ['/bin/sh', '-c', 'ulimit -Sn; ulimit -Hn']);
      expect(log).toBe(`${Math.min(1024, hard)}\n${hard}\n`);
    });

    it("a pids limit is set in the container's cgroup: 2048 by default, resources.pids when given", async () => {
      // The cgroup the runtime recorded for the task: v1 (this host's hybrid layout) or unified v2.
      const pidsMax = async (name: string) => {
        const cgroup = (await rt.status(name)).record.cgroupsPath;
        const v1 = path.join('/sys/fs/cgroup/pids', cgroup, 'pids.max');
        return existsSync(v1) ? v1 : path.join('/sys/fs/cgroup', cgroup, 'pids.max');
      };
      for (const [name, over, want] of [
        [`pids-default-${id}`, {}, '2048'],
        [`pids-set-${id}`, { resources: { pids: 64 } }, '64'],
      ] as const) {
        await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sleep', '30'], ...over }));
        await rt.start(name);
        const value = await until(async () => (await readFile(await pidsMax(name), 'utf8').catch(() => '')).trim(), 10_000, `${name} pids.max`);
        expect(value).toBe(want);
        await rt.stop(name, { gracePeriodMs: 0 });
      }
    });
  });
}
