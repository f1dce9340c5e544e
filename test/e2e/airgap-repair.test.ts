/**
 * An air-gapped image has no registry to fetch a lost blob from: when one of its blobs is deleted
 * from the content store, the repair imports its archive again (still in the import directory) and
 * the device converges again without any network.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { containerDoc, DEMO_REF, E2eRoot, requireE2e } from '../helpers/e2e.ts';

let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('airgap-repair');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('repair of an imported image', () => {
  it('re-imports the archive when its blobs are lost; verify is clean and the container runs', async () => {
    await e.writeManifests({ 'app.yaml': [containerDoc('app', { image: DEMO_REF, script: 'sleep 1000' })] });
    const first = await e.berth('apply', '-f', e.manifests);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/unpack: not unpacked yet/);

    // Lose every blob of the image (as a failing disk would).
    const blobs = join(e.root, 'io.containerd.content.v1.content/blobs/sha256');
    for (const hex of await readdir(blobs)) {
      await chmod(join(blobs, hex), 0o600);
      await rm(join(blobs, hex));
    }
    const second = await e.berth('apply', '-f', e.manifests);
    expect(second.stdout + second.stderr).toMatch(/imported again from .*demo.*and unpacked/);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect((await e.verify()).code).toBe(0);
    expect((await readdir(blobs)).length).toBe(3); // manifest, config, layer
    expect((await e.running('app'))?.state).toBe('running');
    const events = (await e.status()).events.map((ev) => `${ev.reason}: ${ev.message}`);
    expect(events.some((m) => /^Repaired: .*pull \(repair: blobs missing\)/.test(m))).toBe(true);
  });
});
