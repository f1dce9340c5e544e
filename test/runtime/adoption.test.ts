import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { TaskMonitor, type MonitorEvent } from '../../src/runtime/monitor.ts';
import { readLogTail } from '../../src/runtime/logs.ts';
import { cleanup, makeBusyboxRootfs, openRuntime, requireRoot, tempDir, until } from './helpers.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/berth-child.ts', import.meta.url));

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

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
      child.stdout!.on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(buf.split('\n')[0]!); });
      child.on('exit', (code) => reject(new Error(`child exited ${code} before starting containers`)));
    });
    const pids = JSON.parse(line) as { long: number; short: number; shimLong: number };
    // SIGKILL berth and everything in its process group, as a crash or `systemctl kill` would.
    process.kill(-child.pid!, 'SIGKILL');
    await until(async () => child.exitCode !== null || child.signalCode !== null, 5000, 'child death');
    expect(alive(pids.long)).toBe(true);
    expect(alive(pids.shimLong)).toBe(true);

    rt = await openRuntime(berthRoot);
    const events: MonitorEvent[] = [];
    const mon = new TaskMonitor({ runtime: rt, watch: true, pollIntervalMs: 200, onEvent: (e) => events.push(e) });
    await mon.start();
    try {
      const long = await rt.status(`${prefix}-long`);
      expect(long.state).toBe('running');
      expect(long.pid).toBe(pids.long);
      // start() on an adopted running task is a no-op: same task, no restart.
      const again = await rt.start(`${prefix}-long`);
      expect(again.pid).toBe(pids.long);
      expect(again.record.restartCount).toBe(0);
      const runcList = execFileSync('runc', ['--root', rt.oci.stateRoot, 'list', '-q'], { encoding: 'utf8' }).trim().split('\n');
      expect(runcList.filter((n) => n === `${prefix}-long`)).toHaveLength(1);
      expect(execFileSync('pgrep', ['-f', '--', `task-id ${long.record.task!.id}`], { encoding: 'utf8' }).trim().split('\n')).toHaveLength(1);

      // The short task ends after berth died: its exit code is still learned.
      const e = await until(async () => events.find((x) => x.type === 'exit' && x.name === `${prefix}-short`), 10_000, 'short exit');
      expect(e).toMatchObject({ exit: { exitCode: 5, oomKilled: false }, decision: { restart: false } });
      expect((await rt.status(`${prefix}-short`)).exit!.exitCode).toBe(5);
      // Output kept flowing into the log while no berth was running.
      expect((await readLogTail(rt.containerDir(`${prefix}-long`), 1)).toString()).toBe('tick\n');
      const rec = JSON.parse(await readFile(path.join(rt.containerDir(`${prefix}-long`), 'state.json'), 'utf8'));
      expect(rec.task.pid).toBe(pids.long);
    } finally {
      mon.stop();
    }
  });

  it('after a "reboot" (supervisor and task gone, rootfs unmounted) the task is found lost and restarted at once in its container', async () => {
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
    const events: MonitorEvent[] = [];
    const mon = new TaskMonitor({ runtime: rt, watch: false, pollIntervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    await mon.start();
    try {
      await until(async () => events.some((e) => e.type === 'restarted' && e.name === name), 10_000, 'restart');
      const after = await rt.status(name);
      expect(after.state).toBe('running');
      expect(after.pid).not.toBe(before.pid);
      expect(after.record.restartCount).toBe(1);
      expect(events.find((e) => e.type === 'exit' && e.name === name)).toMatchObject({ decision: { restart: true, delayMs: 0 } });
    } finally {
      mon.stop();
    }
  });
});
