/** `berth restart`: a new task in the same writable layer, through bin/berth, real runc and overlay. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Metadata } from '../../src/metadata/metadata.ts';
import { acquireLock, RECONCILE_LOCK } from '../../src/metadata/lock.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { cleanup, makeBusyboxRootfs, openRuntime, request, requireRoot, tempDir, until } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const exec = promisify(execFile);

describe('berth restart', () => {
  let root: string;
  let berthRoot: string;
  let rt: Runtime;
  let upper: string;
  const berth = (...args: string[]) => exec(BERTH, ['--config', path.join(root, 'none.toml'), '--root', berthRoot, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    requireRoot();
    root = await tempDir('restart-cli');
    berthRoot = path.join(root, 'berth');
    const rootfs = await makeBusyboxRootfs(path.join(root, 'image'));
    rt = await openRuntime(berthRoot);
    upper = path.join(root, 'upper');
    const work = path.join(root, 'work');
    await mkdir(upper);
    await mkdir(work);
    // Each task appends its pid to /runs, in the overlay's writable layer.
    await rt.create(
      request('app', [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${rootfs}`, `upperdir=${upper}`, `workdir=${work}`] }], {
        args: ['/bin/sh', '-c', 'echo $$ >> /runs; trap "exit 0" TERM; while true; do sleep 0.1; done'],
        restartPolicy: 'Always',
      }),
    );
    await rt.start('app');
  });
  afterAll(async () => cleanup(rt, root));

  it('stops the task and starts a new one (new pid) that keeps the files written in its writable layer', async () => {
    const first = await rt.status('app');
    await until(async () => (await readFile(path.join(upper, 'runs'), 'utf8').catch(() => '')).trim() !== '');
    const { stdout } = await berth('restart', 'app');
    const second = await rt.status('app');
    expect(second.state).toBe('running');
    expect(second.pid).not.toBe(first.pid);
    expect(stdout).toBe(`app: restarted (pid ${second.pid})\n`);
    // Both tasks ran in the same layer: the file the first wrote is there, with the second's line after it.
    await until(async () => (await readFile(path.join(upper, 'runs'), 'utf8')).trim().split('\n').length === 2);
    expect((await berth('exec', 'app', '--', 'cat', '/runs')).stdout.trim().split('\n')).toHaveLength(2);
    expect(second.record.stopped).toBe(false);
    expect(second.record.restartCount).toBe(first.record.restartCount + 1);
  });

  it('waits for the reconcile lock (a daemon turn) and says who holds it', async () => {
    const md = await Metadata.open(path.join(berthRoot, 'metadata.db'));
    try {
      await acquireLock(md, RECONCILE_LOCK, { holder: 'a test turn' });
      const before = await rt.status('app');
      const child = spawn(BERTH, ['--config', path.join(root, 'none.toml'), '--root', berthRoot, 'restart', 'app'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b) => (stderr += b));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await until(async () => stderr.includes('waiting for the reconcile lock, held by a test turn'), 30_000, 'restart to wait for the lock');
      expect((await rt.status('app')).pid).toBe(before.pid);
      md.releaseLock(md.getLock(RECONCILE_LOCK)!);
      expect(await exited).toBe(0);
      expect((await rt.status('app')).pid).not.toBe(before.pid);
    } finally {
      md.close();
    }
  });

  it('an unknown container is an error naming it, and nothing is stopped', async () => {
    const before = await rt.status('app');
    const err = await berth('restart', 'app', 'nope').then(
      () => undefined,
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('container nope not found');
    expect((await rt.status('app')).pid).toBe(before.pid);
  });
});
