import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, makeBusyboxRootfs, openRuntime, request, requireRoot, tempDir, until } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const exec = promisify(execFile);

describe('berth ps / logs / inspect', () => {
  let root: string;
  let berthRoot: string;
  let rt: Runtime;
  let rootfs: string;
  const berth = (...args: string[]) => exec(BERTH, ['--config', path.join(root, 'none.toml'), '--root', berthRoot, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    requireRoot();
    root = await tempDir('cli');
    berthRoot = path.join(root, 'berth');
    rootfs = await makeBusyboxRootfs(path.join(root, 'image'));
    rt = await openRuntime(berthRoot);
    const upper = path.join(root, 'upper'),
      work = path.join(root, 'work');
    await mkdir(upper);
    await mkdir(work);
    await rt.create(
      request('web', [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${rootfs}`, `upperdir=${upper}`, `workdir=${work}`] }], {
        args: ['/bin/sh', '-c', 'echo one; echo two; echo three; while true; do sleep 1; done'],
      }),
    );
    await rt.start('web');
    await rt.create(
      request('hog', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'a=aaaaaaaa; while true; do a="$a$a"; done'], resources: { memoryBytes: 16 << 20 } }),
    );
    await rt.start('hog');
    await until(async () => (await rt.status('hog')).state === 'exited');
  });
  afterAll(async () => cleanup(rt, root));

  it('ps --json lists state, pid, exit code, OOM, restarts', async () => {
    const rows = JSON.parse((await berth('ps', '--json')).stdout);
    const web = rows.find((r: any) => r.name === 'web');
    const hog = rows.find((r: any) => r.name === 'hog');
    expect(web).toMatchObject({ image: 'test/busybox:latest', state: 'running', exitCode: null, restarts: 0 });
    expect(web.pid).toBe((await rt.status('web')).pid);
    expect(hog).toMatchObject({ state: 'exited', exitCode: 137, oomKilled: true, pid: null });
  });

  it('ps shows a table with OOM-killed spelled out', async () => {
    const { stdout } = await berth('ps');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+IMAGE\s+STATE\s+HEALTH\s+PID\s+EXIT\s+RESTARTS\s+STARTED\s+AGE$/);
    expect(lines.find((l) => l.startsWith('hog'))).toMatch(/exited \(OOM-killed\)\s+-\s+-\s+137\s+0/);
    expect(lines.find((l) => l.startsWith('web'))).toMatch(/running\s+-\s+\d+\s+-\s+0/);
  });

  it('logs --tail N prints the last lines', async () => {
    await until(async () => (await berth('logs', 'web')).stdout.includes('three'));
    expect((await berth('logs', 'web', '--tail', '2')).stdout).toBe('two\nthree\n');
  });

  it('logs -f prints what was there, follows new output, and ends when the task exits', async () => {
    await rt.create(request('slow', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo first; sleep 0.5; echo second; sleep 0.5; echo third'] }));
    await rt.start('slow');
    await until(async () => (await berth('logs', 'slow')).stdout.includes('first'));
    const t0 = Date.now();
    const { stdout } = await berth('logs', '-f', 'slow');
    expect(stdout).toBe('first\nsecond\nthird\n');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('inspect --json shows image digest, snapshot key and the overlay rootfs mount', async () => {
    const v = JSON.parse((await berth('inspect', 'web', '--json')).stdout);
    expect(v.image.digest).toBe('sha256:' + '0'.repeat(64));
    expect(v.snapshot.key).toBe('test/web');
    expect(v.rootfs.mounts[0]).toBe(`overlay lowerdir=${rootfs},upperdir=${path.join(root, 'upper')},workdir=${path.join(root, 'work')}`);
    expect(v.process.args[0]).toBe('/bin/sh');
    expect(v.task.supervisorPid).toBeGreaterThan(0);
  });

  it('ps still lists the others when one record is corrupt, and names the bad one', async () => {
    await mkdir(path.join(berthRoot, 'containers', 'broken'), { recursive: true });
    await writeFile(path.join(berthRoot, 'containers', 'broken', 'state.json'), '{"version": 1, "na');
    try {
      const { stdout, stderr } = await berth('ps');
      expect(stdout).toMatch(/^web\s/m);
      expect(stderr).toContain('container broken:');
      expect(stderr).toContain('not valid JSON');
    } finally {
      await rm(path.join(berthRoot, 'containers', 'broken'), { recursive: true });
    }
  });

  it('an unknown container is an error naming it', async () => {
    const err = await berth('logs', 'nope').then(
      () => undefined,
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('container nope not found');
  });
});
