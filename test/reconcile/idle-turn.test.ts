/**
 * A turn that changes nothing writes nothing (issue 14: on an SD card, an idle daemon's writes are
 * wear for nothing). Such a turn is planned and ends without the reconcile lock, whose two commits
 * were all an idle turn wrote; a turn with something to do still takes the lock, so two berth
 * processes never act at once, and plans again under it when another process wrote meanwhile.
 * The real Reconciler on the fakes of test/fakes/, with the metadata in a file as berth keeps it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RECONCILE_LOCK } from '../../src/metadata/lock.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { isFlocked, updateLockFile } from '../../src/runtime/update-lock.ts';
import { FakeWorld, container, testImage } from '../fakes/world.ts';

const APP = 'registry.test/app:1';
const V2 = { V: '2' };
let w: FakeWorld;
/** Another berth process's connection to the same metadata.db. */
let other: Metadata;
let holder: ChildProcess | undefined;

beforeEach(async () => {
  w = await FakeWorld.create({ metadataFile: true });
  other = Metadata.open(join(w.root, 'metadata.db'));
  w.registry.push(APP, await testImage('v1'));
  await w.writeManifests([container('web', APP, { env: { V: '1' } })]);
  expect(FakeWorld.kinds(await w.turn())).toEqual(['pull:ok', 'create:ok']);
});

afterEach(async () => {
  holder?.kill('SIGKILL');
  holder = undefined;
  other.close();
  await w.close();
});

/** metadata.db and its WAL, byte for byte. */
function database(): Buffer {
  return Buffer.concat([readFileSync(join(w.root, 'metadata.db')), readFileSync(join(w.root, 'metadata.db-wal'))]);
}

/** The other process takes the reconcile lock, as `berth apply` in the middle of a turn holds it. */
function otherTakesTheLock() {
  const attempt = other.tryAcquireLock(RECONCILE_LOCK, { holder: 'berth apply (pid 4242)', ttlMs: 60_000 });
  if (!attempt.acquired) throw new Error('the lock should be free');
  return attempt.lock;
}

describe('a turn that changes nothing', () => {
  it('writes nothing to metadata.db or its WAL, and needs no lock (another process may hold it)', async () => {
    await w.turn(); // the statuses go from "Applied" (what the last turn did) to "UpToDate"
    const before = database();
    for (let i = 0; i < 3; i++) {
      w.advance(30_000); // the daemon's resync
      const r = await w.turn();
      expect(r.steps).toEqual([]);
      expect(r.converged).toBe(true);
      expect(r.generation?.result).toBe('applied');
    }
    expect(database().equals(before)).toBe(true);
    otherTakesTheLock();
    const held = database();
    expect((await w.turn()).converged).toBe(true);
    expect(database().equals(held)).toBe(true);
  });

  it('but a status still records what it says: a container that exited with nothing to do about it', async () => {
    await w.writeManifests([container('web', APP, { env: { V: '1' }, restartPolicy: 'Never' })]);
    await w.turn();
    w.runtime.exit('web', 0);
    const r = await w.turn();
    expect(r.steps).toEqual([]);
    expect(w.metadata.getStatus('Container', 'web')?.message).toBe('exited (exit code 0)');
  });

  it('while an update lock holds an update back, writes nothing after the turn that staged it; the update goes ahead on release', async () => {
    const lockFile = updateLockFile(w.root, 'web');
    mkdirSync(join(w.root, 'locks'), { recursive: true });
    writeFileSync(lockFile, '');
    holder = spawn('flock', ['--no-fork', lockFile, 'sleep', '600'], { stdio: 'ignore' }); // the holder is the process killed
    while (!(await isFlocked(lockFile))) await delay(10);
    await w.writeManifests([container('web', APP, { env: { V: '2' } })]);
    const staged = await w.turn();
    expect(staged.steps).toEqual([expect.objectContaining({ kind: 'wait', reason: expect.stringContaining('update lock held by the app') })]);
    expect(w.metadata.getStatus('Container', 'web')?.reason).toBe('Waiting');

    const before = database();
    for (let i = 0; i < 3; i++) {
      w.advance(5_000); // the recheck of a held update lock
      const r = await w.turn();
      expect(r.steps.map((s) => s.kind)).toEqual(['wait']);
      expect(r.converged).toBe(false);
    }
    expect(database().equals(before)).toBe(true);

    holder.kill('SIGKILL');
    await new Promise((resolve) => holder!.once('exit', resolve));
    expect(FakeWorld.kinds(await w.turn())).toContain('recreate:ok');
    expect(w.metadata.getContainer('web')?.spec).toMatchObject({ env: V2 });
  });
});

describe('a turn with something to do', () => {
  beforeEach(async () => {
    await w.writeManifests([container('web', APP, { env: { V: '2' } })]);
  });

  it('takes the reconcile lock: while another process holds it, it fails naming the holder and changes nothing', async () => {
    const lock = otherTakesTheLock();
    const specBefore = w.metadata.getContainer('web')?.specHash;
    await expect(w.turn()).rejects.toThrow(/reconcile lock is held by berth apply \(pid 4242\)/);
    expect(w.metadata.getContainer('web')?.specHash).toBe(specBefore);
    other.releaseLock(lock);
    expect(FakeWorld.kinds(await w.turn())).toContain('recreate:ok');
  });

  it('waits for the lock (berth apply) and plans again under it when the holder acted meanwhile', async () => {
    const lock = otherTakesTheLock();
    const tryAcquire = w.metadata.tryAcquireLock.bind(w.metadata);
    let refused = 0;
    vi.spyOn(w.metadata, 'tryAcquireLock').mockImplementation((name, opts) => {
      const attempt = tryAcquire(name, opts);
      if (!attempt.acquired && refused++ === 0) {
        // The holder acts (here: the container disappears) and lets go, while this turn waits.
        w.runtime.forget('web');
        other.releaseLock(lock);
      }
      return attempt;
    });
    const apply = new Reconciler(w.deps, { manifests: w.manifests, holder: 'berth apply', lockWaitMs: 30_000 });
    const r = await apply.turn(AbortSignal.timeout(30_000));
    expect(refused).toBe(1);
    // The plan made before the lock said "recreate"; the one made under it sees the container gone.
    expect(FakeWorld.kinds(r)).toEqual(['create:ok']);
    expect(w.metadata.getContainer('web')?.spec).toMatchObject({ env: V2 });
  });
});
