/**
 * A turn stopped by SIGTERM while it loads the manifests is an abort, not "invalid manifests": the
 * reconciler rethrows it, so berth records no Stalled status or event about manifests that are fine.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { FakeWorld, container } from '../fakes/world.ts';

let w: FakeWorld;
beforeEach(async () => {
  w = await FakeWorld.create();
});
afterEach(async () => w.close());

describe('an abort while loading the manifests', () => {
  it('rejects instead of reporting problems with the manifests', async () => {
    await w.writeManifests([container('web', 'registry.test/app:v1')]);
    const r = new Reconciler(w.deps, { manifests: w.manifests, holder: 'unit test' });
    expect((await r.desired(AbortSignal.timeout(30_000))).problems).toEqual([]); // the manifests are fine
    const stopping = new AbortController();
    stopping.abort();
    await expect(r.desired(stopping.signal)).rejects.toThrow();
    expect(w.metadata.listStatus().filter((s) => s.kind === 'Manifests')).toEqual([]);
  });
});
