import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { decideRestart } from '../../src/runtime/restart-policy.ts';
import { readLogTail } from '../../src/runtime/logs.ts';
import { cleanup, makeBusyboxRootfs, openRuntime, requireRoot, tempDir, until } from './helpers.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/berth-child.ts', import.meta.url));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('tasks outlive berth and are adopted by the next berth', () => {
  let root: string;
  let rt: Runtime | undefined;
  let rootfs: string;
  const prefix = `adopt-${process.pid}`;

  beforeAll(async () => {
    requireRoot();
    root = await tempDir('adopt');
    rootfs = await makeBusyboxRootfs(path.join(root, 'image'));
  });
  afterAll(async () => cleanup(rt, root));

  it('kill -9 of the berth process group leaves tasks running; a new process adopts them without duplicates and learns later exit codes', async () => {
    const berthRoot = path.join(root, 'berth');
    const child = spawn(NODE, [CHILD, berthRoot, rootfs, prefix], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
      });
      child.on('exit', (code) => reject(new Error(`child exited ${code} before starting containers`)));
    });
    const pids = JSON.parse(line) as { long: number; short: number; shimLong: number };
    // SIGKILL berth and everything in its process group, as a crash or `systemctl kill` would.
    process.kill(-child.pid!, 'SIGKILL');
    await until(async () => child.exitCode !== null || child.signalCode !== null, 5000, 'child death');
    expect(alive(pids.long)).toBe(true);
    expect(alive(pids.shimLong)).toBe(true);

    // The next berth reads the same files: what it observes is what its reconciler plans from.
    rt = await openRuntime(berthRoot);
    {
      const long = await rt.status(`${prefix}-long`);
      expect(long.state).toBe('running');
      expect(long.pid).toBe(pids.long);
      // start() on an adopted running task is a no-op: same task, no restart.
      const again = await rt.start(`${prefix}-long`);
      expect(again.pid).toBe(pids.long);
      expect(again.record.restartCount).toBe(0);
      const runcList = execFileSync('runc', ['--root', rt.oci.stateRoot, 'list', '-q'], { encoding: 'utf8' }).trim().split('\n');
      expect(runcList.filter((n) => n === `${prefix}-long`)).toHaveLength(1);
      expect(
        execFileSync('pgrep', ['-f', '--', `task-id ${long.record.task!.id}`], { encoding: 'utf8' })
          .trim()
          .split('\n'),
      ).toHaveLength(1);

      // The short task ends after berth died: its exit code is still learned.
      const short = await until(
        async () => {
          const s = await rt!.status(`${prefix}-short`);
          return s.state === 'exited' && s;
        },
        10_000,
        'short exit',
      );
      expect(short.exit).toMatchObject({ exitCode: 5, oomKilled: false });
      // Output kept flowing into the log while no berth was running.
      expect((await readLogTail(rt.containerDir(`${prefix}-long`), 1)).toString()).toBe('tick\n');
      const rec = JSON.parse(await readFile(path.join(rt.containerDir(`${prefix}-long`), 'state.json'), 'utf8'));
      expect(rec.task.pid).toBe(pids.long);
    }
  });

  it('after a "reboot" (supervisor and task gone, rootfs unmounted) the task is found lost, and a restart (what the plan decides at once) runs in its container', async () => {
    rt ??= await openRuntime(path.join(root, 'berth'));
    const name = `${prefix}-long`;
    const before = await rt.status(name);
    expect(before.state).toBe('running');
    // What a power cut does: every process dies, mounts vanish; only the disk stays.
    process.kill(before.record.task!.shimPid!, 'SIGKILL');
    process.kill(before.pid!, 'SIGKILL');
    await until(async () => !alive(before.pid!), 5000, 'task death');
    execFileSync('umount', [path.join(rt.containerDir(name), 'rootfs')]);
    const lost = await rt.status(name);
    expect(lost.state).toBe('exited');
    expect(lost.exit).toMatchObject({ lost: true });
    // A lost exit restarts at once without growing the back-off (the plan's decision, pure) ...
    const decision = decideRestart({ policy: 'Always', exitCode: lost.exit!.exitCode, ranForMs: 1_000, streak: lost.record.backoffStreak, lost: true });
    expect(decision).toMatchObject({ restart: true, delayMs: 0 });
    // ... and its start step does what restartContainer does: a new task, rootfs mounted again.
    await rt.start(name, { restart: true, backoffStreak: decision.restart ? decision.streak : 0 });
    const after = await rt.status(name);
    expect(after.state).toBe('running');
    expect(after.pid).not.toBe(before.pid);
    expect(after.record.restartCount).toBe(1);
    expect(after.record.snapshotKey).toBe(before.record.snapshotKey);
  });
});
