/**
 * Reconcile turns without root: the real Reconciler (observe → plan → execute, the reconcile lock,
 * generations, status) on SQLite in memory and the in-memory fakes of test/fakes/, with an injected
 * clock. Each test drives a device through a few turns and checks what runs afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeWorld, container, testImage } from '../fakes/world.ts';

const APP = 'registry.test/app:1';
let w: FakeWorld;

beforeEach(async () => {
  w = await FakeWorld.create();
  w.registry.push(APP, await testImage('v1'));
});
afterEach(async () => w.close());

describe('a turn on an empty device', () => {
  it('pulls the image, unpacks it, creates and starts the container, and records the generation', async () => {
    await w.writeManifests([container('web', APP)]);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toEqual(['pull:ok', 'create:ok']);
    expect(r.converged).toBe(true);
    expect((await w.runtime.status('web')).state).toBe('running');
    const image = w.metadata.getImage(APP)!;
    expect(image.chainIds).toHaveLength(1);
    expect(w.snapshotter.keys()).toContain(image.chainIds![0]);
    expect(w.metadata.getContainer('web')).toMatchObject({ image: APP, imageDigest: image.manifestDigest });
    expect(r.generation?.result).toBe('applied');
    // Nothing left to do: the next turn changes nothing.
    expect(FakeWorld.kinds(await w.turn())).toEqual([]);
  });
});
