/**
 * Start-up recovery of start-first updates a crash interrupted (no root, fakes): the metadata
 * decides. A successor the container record already names takes over (the crash came after the
 * decision, before the handover); any other is deleted with its writable layer, and the old
 * container stays.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { settleSuccessors } from '../../src/reconcile/containers.ts';
import type { CreateRequest } from '../../src/runtime/container-runtime.ts';
import { FakeWorld } from '../fakes/world.ts';

let w: FakeWorld;
beforeEach(async () => {
  w = await FakeWorld.create();
});
afterEach(async () => {
  await w.close();
});

/** `web` runs on snapshot old-layer; its successor web.abc runs beside it on new-layer. */
async function interruptedUpdate(): Promise<void> {
  const request = (snapshotKey: string, instance?: string): CreateRequest => ({
    name: 'web',
    spec: { network: 'none' } as CreateRequest['spec'],
    imageRef: 'app',
    imageDigest: 'sha256:d',
    imageConfig: {},
    snapshotKey,
    snapshotChain: [],
    mounts: [],
    ...(instance ? { instance } : {}),
  });
  for (const key of ['old-layer', 'new-layer']) await w.snapshotter.prepare(key);
  await w.runtime.create(request('old-layer'));
  await w.runtime.start('web');
  await w.runtime.create(request('new-layer', 'web.abc'));
  await w.runtime.start('web.abc');
  w.metadata.addGeneration({ desired: { containers: [], images: [], volumes: [] }, result: 'applied' });
}

const record = (snapshotKey: string) => ({
  name: 'web',
  specHash: 'h',
  spec: {},
  image: 'app',
  imageDigest: 'sha256:d',
  snapshotter: w.snapshotter.name,
  snapshotKey,
  generation: 1,
});
const snapshots = async () => {
  const keys: string[] = [];
  for await (const s of w.snapshotter.walk()) keys.push(s.key);
  return keys.sort();
};

describe('settleSuccessors', () => {
  it('the metadata already names the successor: it takes the name, the old layer goes', async () => {
    await interruptedUpdate();
    w.metadata.putContainer(record('new-layer'));
    expect(await settleSuccessors(w.deps, new AbortController().signal)).toEqual([
      'web: the new container took over (start-first update interrupted after it was ready)',
    ]);
    expect(w.runtime.names()).toEqual(['web']);
    expect((await w.runtime.status('web')).record.snapshotKey).toBe('new-layer');
    expect(await snapshots()).toEqual(['new-layer']);
    expect(await w.runtime.successors()).toEqual([]);
  });

  it('the metadata still names the old container: the successor and its layer go, the old one stays', async () => {
    await interruptedUpdate();
    w.metadata.putContainer(record('old-layer'));
    expect(await settleSuccessors(w.deps, new AbortController().signal)).toEqual([
      'web: an unfinished start-first successor was removed; the old container stays',
    ]);
    expect(w.runtime.names()).toEqual(['web']);
    expect((await w.runtime.status('web')).state).toBe('running');
    expect((await w.runtime.status('web')).record.snapshotKey).toBe('old-layer');
    expect(await snapshots()).toEqual(['old-layer']);
  });

  it('a retired old container keeps its layer when the successor takes over (a rollback can restore it)', async () => {
    await interruptedUpdate();
    w.metadata.putContainer(record('old-layer'));
    w.metadata.putRetiredContainer({ record: w.metadata.getContainer('web')!, retiredBy: 1 });
    w.metadata.putContainer(record('new-layer'));
    await settleSuccessors(w.deps, new AbortController().signal);
    expect(await snapshots()).toEqual(['new-layer', 'old-layer']);
  });
});
