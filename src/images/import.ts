/**
 * Import images from disk (OCI layout dir, OCI archive, docker-archive) into the content store and
 * record them, as `berth import` and the daemon's import directory do. Names: a full reference in
 * the layout (`org.opencontainers.image.ref.name` or a RepoTag) is normalised as Docker does; a
 * bare tag (`v1`) becomes `import.local/<file name>:v1`; `opts.name` overrides both (one image).
 */
import { basename } from 'node:path';
import type { ContentStore } from '../content/content.ts';
import { corrupt, invalidArgument, isKind, notFound, resourceExhausted } from '../errors.ts';
import type { ImageRecord, Metadata } from '../metadata/metadata.ts';
import { isIndexType } from '../oci/media-types.ts';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from '../oci/platform.ts';
import { normalizeReference, parseReference } from '../oci/reference.ts';
import { parseImageConfig, parseIndex, parseManifest, type Descriptor } from '../oci/types.ts';
import { ARCHIVE_LIMITS, importFromDisk, type ImportedLayout } from '../remotes/oci-layout.ts';
import { leasedStore } from './leased-store.ts';
import { WorkLease } from './work-lease.ts';

/** Label on an imported image's record: the archive or layout it came from (a repair re-imports it). */
export const IMPORTED_FROM_LABEL = 'berth/imported-from';

export interface ImportOptions {
  path: string;
  store: ContentStore;
  metadata: Metadata;
  /** Name for the (single) imported image, overriding names in the archive. */
  name?: string;
  /** Platform to record from a multi-platform index (default: the host's). */
  platform?: string;
  signal?: AbortSignal;
}

export interface ImportResult {
  format: ImportedLayout['format'];
  records: ImageRecord[];
}

function nameFor(raw: string | undefined, path: string, i: number): string {
  const stem =
    basename(path)
      .replace(/(\.(tar|oci|tgz|gz))+$/, '')
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+|[._-]+$/g, '') || 'image';
  if (!raw) return normalizeReference(`import.local/${stem}:${i === 0 ? 'latest' : `image-${i}`}`);
  if (raw.includes('/') || raw.includes(':') || raw.includes('@')) return normalizeReference(raw);
  return normalizeReference(`import.local/${stem}:${raw}`);
}

export async function importImages(opts: ImportOptions): Promise<ImportResult> {
  // Blobs land before the records that reference them: a lease keeps GC off them meanwhile.
  const lease = new WorkLease(opts.metadata, { kind: 'import', labels: { 'berth/import': opts.path } });
  try {
    return await importUnderLease(opts, leasedStore(opts.store, lease));
  } finally {
    lease.release();
  }
}

async function importUnderLease(opts: ImportOptions, store: ContentStore): Promise<ImportResult> {
  const { metadata, signal } = opts;
  const layout = await importFromDisk(opts.path, store, signal);
  if (layout.images.length === 0) throw invalidArgument(`${opts.path}: the archive holds no image`);
  if (opts.name && layout.images.length > 1) throw invalidArgument(`${opts.path}: holds ${layout.images.length} images; --name needs exactly one`);
  const want = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  // Every image is checked before any is recorded: one that lies about its name records none.
  const pending: Array<Parameters<Metadata['putImage']>[0]> = [];
  for (const [i, img] of layout.images.entries()) {
    const name = opts.name ? normalizeReference(opts.name) : nameFor(img.name, opts.path, i);
    let manifestDesc: Descriptor = img.desc;
    for (let depth = 0; isIndexType(manifestDesc.mediaType) && depth < 4; depth++) {
      const index = parseIndex(await store.readBlob(manifestDesc.digest, signal), `${opts.path} ${manifestDesc.digest}`);
      manifestDesc = selectManifest(index.manifests, want, `${opts.path} (${name})`);
    }
    // A name that carries a digest is a promise about the content (`reg/app@sha256:P` is what a
    // digest-pinned manifest runs): the archive must hold exactly that index or manifest, or it
    // could replace a pinned image with anything.
    const pinned = parseReference(name).digest;
    if (pinned !== undefined && pinned !== img.desc.digest && pinned !== manifestDesc.digest) {
      throw corrupt(
        `${opts.path}: names an image ${name}, but its content is ${img.desc.digest}${manifestDesc.digest !== img.desc.digest ? ` (manifest ${manifestDesc.digest})` : ''}`,
      );
    }
    const missing = (d: Descriptor) => (err: unknown) => {
      if (isKind(err, 'NotFound')) throw notFound(`${opts.path}: ${name} (${formatPlatform(want)}): blob ${d.digest} (${d.mediaType}) is not in the archive`);
      throw err;
    };
    const manifestBytes = await store.readBlob(manifestDesc.digest, signal).catch(missing(manifestDesc));
    const manifest = parseManifest(manifestBytes, `${opts.path} ${manifestDesc.digest}`);
    if (manifest.config.size > ARCHIVE_LIMITS.configBytes) {
      throw resourceExhausted(
        `${opts.path}: ${name}: config ${manifest.config.digest} is ${manifest.config.size} bytes, more than the ${ARCHIVE_LIMITS.configBytes} allowed`,
      );
    }
    const configBytes = await store.readBlob(manifest.config.digest, signal).catch(missing(manifest.config));
    for (const l of manifest.layers) await store.info(l.digest).catch(missing(l));
    const config = parseImageConfig(configBytes, `${opts.path} ${manifest.config.digest}`);
    const platform = formatPlatform(manifestDesc.platform ?? { os: config.os, architecture: config.architecture, variant: config.variant });
    const { platform: _p, annotations: _a, ...target } = img.desc;
    const previous = metadata.getImage(name);
    pending.push({
      name,
      target: { digest: target.digest, mediaType: target.mediaType, size: target.size },
      manifestDigest: manifestDesc.digest,
      configDigest: manifest.config.digest,
      platform,
      size: manifestBytes.length + configBytes.length + manifest.layers.reduce((n, l) => n + l.size, 0),
      ...(previous?.manifestDigest === manifestDesc.digest && previous.snapshotter ? { snapshotter: previous.snapshotter, chainIds: previous.chainIds } : {}),
      labels: { ...(previous?.labels ?? {}), [IMPORTED_FROM_LABEL]: opts.path },
    });
  }
  return { format: layout.format, records: pending.map((r) => metadata.putImage(r)) };
}
