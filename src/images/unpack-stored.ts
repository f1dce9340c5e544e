/**
 * Unpack an image whose blobs are all in the content store already (imported from disk, or pulled
 * with --no-unpack, or whose snapshots were lost): no registry involved, so it works offline.
 */
import type { ContentStore } from '../content/content.ts';
import type { SelectedApplier } from '../diff/layer-applier.ts';
import type { ApplyLimits } from '../diff/limits.ts';
import type { ImageRecord, Metadata } from '../metadata/metadata.ts';
import { parseImageConfig, parseManifest } from '../oci/types.ts';
import type { Snapshotter } from '../snapshots/snapshotter.ts';
import { unpackImage } from './unpack.ts';

export async function unpackStoredImage(opts: {
  record: ImageRecord;
  content: ContentStore;
  snapshotter: Snapshotter;
  metadata: Metadata;
  signal: AbortSignal;
  /** Bounds on each layer's apply (see src/diff/limits.ts); defaults if absent. */
  limits?: Partial<ApplyLimits>;
  /** The code that applies layers; default JavaScript. */
  applier?: SelectedApplier;
}): Promise<ImageRecord> {
  const { record, content, snapshotter, signal } = opts;
  const manifest = parseManifest(await content.readBlob(record.manifestDigest, signal), `image ${record.name}`);
  const config = parseImageConfig(await content.readBlob(manifest.config.digest, signal), `image ${record.name} config`);
  const chainIds = await unpackImage({
    layers: manifest.layers,
    diffIds: config.rootfs.diff_ids,
    snapshotter,
    signal,
    open: (desc, s) => content.open(desc.digest, { signal: s }),
    limits: opts.limits,
    applier: opts.applier,
  });
  const { createdAt, updatedAt: _u, ...rest } = record;
  return opts.metadata.putImage({ ...rest, createdAt, snapshotter: snapshotter.name, chainIds });
}
