/**
 * Image records a generation no longer wants are pruned, but the generation before the current one
 * keeps its images (a rollback needs them). The current generation's desired state carries the
 * registry's pins (`imagePins`) while observe sees the manifests before they are pinned: the two
 * must still be recognised as the same desired state.
 */
import { describe, expect, it } from 'vitest';
import { Metadata } from '../../src/metadata/metadata.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { retiredImages } from '../../src/reconcile/prune-images.ts';

const image = (ref: string) => ({
  kind: 'Image' as const,
  metadata: { name: 'app', labels: {} },
  spec: { ref, pullPolicy: 'IfNotPresent' as const },
  place: { file: 'm.yaml' },
});
const desired = (ref: string): DesiredState => ({ containers: [], images: [image(ref)], volumes: [] });
const record = (name: string) => ({
  name,
  target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1 },
  manifestDigest: `sha256:${'a'.repeat(64)}`,
  configDigest: `sha256:${'b'.repeat(64)}`,
  platform: 'linux/amd64',
  size: 1,
  labels: {},
});

describe('retiredImages', () => {
  it('keeps the previous generation images when the current one was recorded with pins', () => {
    const md = Metadata.open(':memory:');
    md.putImage(record('r/app:v1'));
    md.putImage(record('r/app:v2'));
    md.addGeneration({ desired: desired('r/app:v1'), result: 'applied' });
    md.addGeneration({ desired: { ...desired('r/app:v2'), imagePins: {} }, result: 'applied' });
    expect(retiredImages(md, desired('r/app:v2'))).toEqual([]);
    md.close();
  });
});
