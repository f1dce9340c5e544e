/**
 * Images across turns without root (see turn.test.ts): the import directory provisions images a
 * turn then runs with no registry at all, and images no kept generation asks for are forgotten and
 * collected (prune-images).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importDirectory } from '../../src/reconcile/import-dir.ts';
import { writeOciLayout } from '../helpers/images.ts';
import { FakeWorld, container, testImage } from '../fakes/world.ts';

const APP = 'registry.test/app:1';
let w: FakeWorld;

beforeEach(async () => {
  w = await FakeWorld.create();
});
afterEach(async () => w.close());

describe('the import directory', () => {
  it('imports an OCI layout dropped there once, and a turn runs it with the registry unreachable', async () => {
    const dir = join(w.root, 'import');
    const image = await testImage('v1');
    await writeOciLayout(join(dir, 'app'), image, APP);
    await mkdir(join(dir, 'notes'));
    await writeFile(join(dir, 'README.txt'), 'not an image');
    const first = await importDirectory(w.deps, dir, AbortSignal.timeout(10_000));
    expect(first).toEqual({ imported: [APP], failed: [] });
    expect(w.metadata.getImage(APP)?.manifestDigest).toBe(image.root.digest);
    for (const digest of image.blobs.keys()) expect(w.content.has(digest)).toBe(true);
    // Already imported (same size and time): not read again.
    expect(await importDirectory(w.deps, dir, AbortSignal.timeout(10_000))).toEqual({ imported: [], failed: [] });

    w.registry.down = true;
    await w.writeManifests([container('web', APP)]);
    const r = await w.turn();
    expect(r.outcomes.find((o) => o.step.kind === 'pull')?.message).toContain('unpacked from the content store');
    expect(w.registry.fetched).toEqual([]);
    expect((await w.runtime.status('web')).state).toBe('running');
  });

  it('reports an archive it cannot read and imports the others', async () => {
    const dir = join(w.root, 'import');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'broken.tar'), 'not a tar');
    await writeOciLayout(join(dir, 'app'), await testImage('v1'), APP);
    const r = await importDirectory(w.deps, dir, AbortSignal.timeout(10_000));
    expect(r).toEqual({ imported: [APP], failed: [join(dir, 'broken.tar')] });
    expect(w.metadata.listEvents().some((e) => e.reason === 'ImportFailed')).toBe(true);
  });
});

describe('images no generation wants any more', () => {
  it('are forgotten two generations after the last one that asked for them, and their blobs and layers collected', async () => {
    const v1 = await testImage('v1');
    w.registry.push(APP, v1);
    w.registry.push('registry.test/app:2', await testImage('v2'));
    const apply = async (image: string, env: string) => {
      await w.writeManifests([container('web', image, { env: { E: env }, update: { confirmAfter: '1s' } })]);
      await w.turn();
      w.advance(1_000);
      const r = await w.turn(); // confirms a rollout
      expect(w.metadata.latestGeneration()?.result).toBe('applied');
      return r;
    };
    await apply(APP, 'a');
    const chainId = w.metadata.getImage(APP)!.chainIds![0]!;
    await apply('registry.test/app:2', 'a');
    // The generation before still asks for app:1: kept for a quick rollback.
    expect(w.metadata.getImage(APP)).toBeDefined();
    await w.writeManifests([container('web', 'registry.test/app:2', { env: { E: 'b' }, update: { confirmAfter: '1s' } })]);
    const r = await w.turn();
    const gc = r.outcomes.find((o) => o.step.kind === 'gc');
    expect(gc?.message).toContain(`images no longer wanted: ${APP}`);
    expect(w.metadata.getImage(APP)).toBeUndefined();
    expect(w.content.has(v1.root.digest)).toBe(false);
    expect(w.snapshotter.keys()).not.toContain(chainId);
    expect(w.metadata.getImage('registry.test/app:2')).toBeDefined();
  });
});
