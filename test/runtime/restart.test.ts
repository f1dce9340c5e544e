/**
 * Restarts by policy as production runs them: the reconciler's turns (observe → plan → execute)
 * with the real runtime (runc under berth-shim) on real tasks that exit. The plan's clock is
 * injected, so the back-off is waited out without waiting. Needs root (runc, bind mounts).
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { buildImage, type FileContent } from '../helpers/images.ts';
import { FakeWorld, container } from '../fakes/world.ts';
import { BUSYBOX, cleanup, openRuntime, requireRoot, until } from './helpers.ts';

const IMAGE = 'registry.test/busybox:1';
let w: FakeWorld;
let rt: Runtime | undefined;

/** A one-layer image with static busybox and the applets these tests use. */
async function busyboxImage() {
  const files: Record<string, FileContent> = {
    'bin/busybox': { content: readFileSync(BUSYBOX), mode: 0o755 },
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
    'etc/group': 'root:x:0:\n',
  };
  for (const applet of ['sh', 'sleep', 'true', 'false']) files[`bin/${applet}`] = { type: 'symlink', linkname: 'busybox' };
  return buildImage({ platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`, layers: [{ files }], config: { Cmd: ['/bin/sh'] } });
}

beforeEach(async () => {
  requireRoot();
  w = await FakeWorld.create({ runtime: async (root) => (rt = await openRuntime(root)) });
  w.registry.push(IMAGE, await busyboxImage());
  w.t = Date.now(); // the tasks' start and exit times are real
});
afterEach(async () => {
  await cleanup(rt, w.root);
  await w.close();
});

async function exited(name: string) {
  return until(
    async () => {
      const s = await rt!.status(name);
      return s.state === 'exited' && s;
    },
    10_000,
    `${name} to exit`,
  );
}

describe('restarts by policy through the reconciler, on real tasks', () => {
  it('Always: waits out the back-off, then starts a new task in the same container, counting it and its streak', async () => {
    await w.writeManifests([container('crash', IMAGE, { command: ['/bin/sh', '-c', 'sleep 0.2; exit 3'], network: 'host' })]);
    expect(FakeWorld.kinds(await w.turn())).toEqual(['pull:ok', 'create:ok']);
    const first = await exited('crash');
    expect(first.exit?.exitCode).toBe(3);
    w.t = Date.now();
    const waiting = await w.turn();
    expect(waiting.steps).toEqual([expect.objectContaining({ kind: 'wait', until: first.finishedAtMs! + 10_000 })]);
    expect((await rt!.status('crash')).state).toBe('exited');

    w.t = first.finishedAtMs! + 10_000;
    expect(FakeWorld.kinds(await w.turn())).toEqual(['start:ok']);
    const again = await rt!.status('crash');
    expect(again.record).toMatchObject({ restartCount: 1, backoffStreak: 1, snapshotKey: first.record.snapshotKey, lastExit: { exitCode: 3 } });
    expect(again.record.task?.id).not.toBe(first.record.lastExit?.taskId);

    // A second short-lived crash doubles the back-off.
    const second = await exited('crash');
    w.t = Date.now();
    expect((await w.turn()).steps).toEqual([expect.objectContaining({ kind: 'wait', until: second.finishedAtMs! + 20_000 })]);
  });

  it('OnFailure leaves a task that exited 0 alone; Never leaves a failed one alone', async () => {
    await w.writeManifests([
      container('ok', IMAGE, { command: ['/bin/true'], restartPolicy: 'OnFailure', network: 'host' }),
      container('bad', IMAGE, { command: ['/bin/false'], restartPolicy: 'Never', network: 'host' }),
    ]);
    await w.turn();
    await exited('ok');
    await exited('bad');
    w.t = Date.now() + 3_600_000;
    expect((await w.turn()).steps).toEqual([]);
    expect((await rt!.status('ok')).record.restartCount).toBe(0);
    expect((await rt!.status('bad')).exit?.exitCode).toBe(1);
  });
});
