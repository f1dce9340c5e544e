import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isKind } from '../../src/errors.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import { isMountPoint } from '../../src/snapshots/mount.ts';
import { followLog, readLogTail } from '../../src/runtime/logs.ts';
import { bindRootfs, cleanup, openRuntime, request, runtimeFixture, until } from './helpers.ts';

const exited = (rt: Runtime, name: string, ms = 10_000) =>
  until(
    async () => {
      const s = await rt.status(name);
      return (s.state === 'exited' || s.state === 'stopped') && s;
    },
    ms,
    `${name} to exit`,
  );

describe('runtime features (runc)', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  const id = String(process.pid);

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('features'));
  });
  afterAll(async () => cleanup(rt, root));

  it('a task within its memory limit is not flagged OOM', async () => {
    const name = `nooom-${id}`;
    await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/true'], resources: { memoryBytes: 24 * 1024 * 1024, cpus: 0.5, pids: 16 } }));
    await rt.start(name);
    const st = await exited(rt, name);
    expect(st.exit).toMatchObject({ exitCode: 0, oomKilled: false });
  });

  it('readOnlyRootfs: the rootfs cannot be written, a tmpfs mount can', async () => {
    const name = `ro-${id}`;
    await rt.create(
      request(name, bindRootfs(rootfs), {
        args: ['/bin/sh', '-c', 'touch /tmp/ok && echo tmpfs-ok; touch /etc/nope 2>/dev/null && echo rootfs-written; exit 0'],
        readOnlyRootfs: true,
        mounts: [{ type: 'tmpfs', target: '/tmp', sizeBytes: 1024 * 1024 }],
      }),
    );
    await rt.start(name);
    await exited(rt, name);
    const log = (await readLogTail(rt.containerDir(name))).toString();
    expect(log).toContain('tmpfs-ok');
    expect(log).not.toContain('rootfs-written');
    expect(existsSync(path.join(rootfs, 'etc/nope'))).toBe(false);
  });

  it('a named volume survives deleting the container and is seen by its replacement', async () => {
    const vol = `vol-${id}`;
    const mounts = [{ type: 'volume' as const, name: vol, target: '/data', readOnly: false }];
    await rt.create(request(`v1-${id}`, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo kept > /data/file'], mounts }));
    await rt.start(`v1-${id}`);
    await exited(rt, `v1-${id}`);
    const { snapshotKey } = await rt.delete(`v1-${id}`);
    expect(snapshotKey).toBe(`test/v1-${id}`);
    expect(existsSync(rt.containerDir(`v1-${id}`))).toBe(false);
    expect(await readFile(path.join(rt.root, 'volumes', vol, 'file'), 'utf8')).toBe('kept\n');
    await rt.create(request(`v2-${id}`, bindRootfs(rootfs), { args: ['/bin/cat', '/data/file'], mounts }));
    await rt.start(`v2-${id}`);
    await exited(rt, `v2-${id}`);
    expect((await readLogTail(rt.containerDir(`v2-${id}`))).toString()).toBe('kept\n');
  });

  it('bad specs are rejected before anything is created', async () => {
    const cases: [string, Parameters<typeof request>[2], RegExp][] = [
      [`nocmd-${id}`, { command: ['/bin/nonexistent'] }, /command "\/bin\/nonexistent" not found in image/],
      [`nopath-${id}`, { command: ['httpd-missing'] }, /command "httpd-missing" not found in image .*searched PATH \/bin/],
      [`nouser-${id}`, { user: 'nobody-here' }, /user "nobody-here" does not exist in the image's \/etc\/passwd/],
      [`nogroup-${id}`, { user: 'app:wheel' }, /group "wheel" does not exist/],
      [
        `nobind-${id}`,
        { mounts: [{ type: 'bind', source: '/nonexistent/dir', target: '/x', readOnly: true }] },
        /bind mount source \/nonexistent\/dir does not exist/,
      ],
    ];
    for (const [name, s, re] of cases) {
      const err = await rt.create(request(name, bindRootfs(rootfs), s)).then(
        () => undefined,
        (e) => e,
      );
      expect(isKind(err, 'InvalidArgument'), `${name}: ${err}`).toBe(true);
      expect(err.message).toMatch(re);
      expect(existsSync(rt.containerDir(name))).toBe(false);
    }
    const vols = await readdir(path.join(rt.root, 'volumes')).catch(() => []);
    expect(vols.filter((v) => v.startsWith('never-'))).toEqual([]);
  });

  it('a stale runtime task of the same name does not block the first start', async () => {
    const name = `stale-${id}`;
    await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo fresh'] }));
    // Left behind by an earlier incarnation whose container dir was removed by hand.
    // stdio ignored: a created task holds runc's stdio until it starts.
    const made = spawnSync('runc', ['--root', rt.oci.stateRoot, 'create', '--bundle', rt.containerDir(name), name], { stdio: 'ignore' });
    expect(made.status).toBe(0);
    const st = await rt.start(name);
    expect(st.state).toBe('running');
    const done = await exited(rt, name);
    expect(done.exit!.exitCode).toBe(0);
    expect((await readLogTail(rt.containerDir(name))).toString()).toBe('fresh\n');
  });

  it('a missing runtime binary says how to install it', async () => {
    const err = await Runtime.open({ root: path.join(root, 'other'), binary: 'runc-not-installed' }).then(
      () => undefined,
      (e) => e,
    );
    expect(isKind(err, 'FailedPrecondition')).toBe(true);
    expect(err.message).toContain('apt-get install runc');
  });

  it('runs on a real overlay mount; a restart keeps the writable layer; delete unmounts it', async () => {
    const name = `ovl-${id}`;
    const upper = path.join(root, 'ovl/upper'),
      work = path.join(root, 'ovl/work');
    await mkdir(upper, { recursive: true });
    await mkdir(work, { recursive: true });
    const mounts = [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${rootfs}`, `upperdir=${upper}`, `workdir=${work}`] }];
    await rt.create(request(name, mounts, { args: ['/bin/sh', '-c', 'if [ -f /state ]; then echo second-run; else echo first > /state; echo first-run; fi'] }));
    const rootfsDir = path.join(rt.containerDir(name), 'rootfs');
    expect(await isMountPoint(rootfsDir)).toBe(true);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(`upperdir=${upper}`)).toBe(true);
    await rt.start(name);
    await exited(rt, name);
    expect(await readFile(path.join(upper, 'state'), 'utf8')).toBe('first\n');
    expect(existsSync(path.join(rootfs, 'state'))).toBe(false); // the image layer is untouched
    const again = await rt.start(name, { restart: true });
    expect(again.record.restartCount).toBe(1);
    await until(async () => (await readLogTail(rt.containerDir(name))).toString().includes('second-run'));
    await rt.delete(name);
    expect(await isMountPoint(rootfsDir)).toBe(false);
    expect(existsSync(path.join(upper, 'state'))).toBe(true); // removing the layer is the snapshotter's job
  });

  it('rotates logs at the size cap, keeps N files, and follow sees every line across rotations', async () => {
    // ~30 lines a file (each is recorded with its time and stream): a follower late by a burst or two loses nothing.
    const small = await openRuntime(path.join(root, 'berth-logs'), { logMaxBytes: 1500, logMaxFiles: 3 });
    try {
      const name = `logs-${id}`;
      await small.create(
        request(name, bindRootfs(rootfs), {
          args: ['/bin/sh', '-c', 'i=0; while [ $i -lt 120 ]; do i=$((i+1)); echo "line-$i"; case $i in *0) sleep 0.15;; esac; done'],
        }),
      );
      const dir = small.containerDir(name);
      const lines: string[] = [];
      const follow = (async () => {
        let text = '';
        for await (const chunk of followLog(dir, { fromOffset: 0, pollMs: 10, done: async () => (await small.status(name)).state === 'exited' }))
          text += chunk.toString();
        lines.push(...text.trim().split('\n'));
      })();
      await small.start(name);
      await exited(small, name);
      await follow;
      expect(lines).toEqual(Array.from({ length: 120 }, (_, i) => `line-${i + 1}`));
      const files = (await readdir(dir)).filter((f) => /^log(\.\d+)?$/.test(f)).sort();
      expect(files).toEqual(['log', 'log.1', 'log.2']);
      for (const f of files) expect((await stat(path.join(dir, f))).size).toBeLessThanOrEqual(1500);
      expect((await readLogTail(dir, 3)).toString()).toBe('line-118\nline-119\nline-120\n');
    } finally {
      await cleanup(small, path.join(root, 'berth-logs'));
    }
  });
});
