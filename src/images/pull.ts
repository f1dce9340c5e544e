/**
 * Pull an image: resolve the reference → pick the platform from an index → fetch manifest and
 * config → fetch layers concurrently (p-queue, `pull.concurrency`) into the content store → write
 * the image record. A lease protects everything fetched from GC while the pull runs.
 *
 * Unpacking plugs in through `opts.unpack`: it is started as soon as the manifest and config are
 * known and runs while layers still download; `whenLayerCommitted(i)` resolves when layer i is in
 * the content store, so layer i can be applied while later layers download. Its result (chain IDs,
 * snapshotter) goes into the image record.
 *
 * @example
 *   const rec = await pull({ ref: 'alpine', store, metadata, client, config, log, signal,
 *     onProgress: (e) => e.type === 'blob-progress' && bar.update(e.offset) });
 */
import PQueue from 'p-queue';
import type { Config } from '../config/config.ts';
import type { ContentStore } from '../content/content.ts';
import { BerthError, failedPrecondition } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ImageRecord, Metadata } from '../metadata/metadata.ts';
import { parseReference, formatReference } from '../oci/reference.ts';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest, type PlatformSpec } from '../oci/platform.ts';
import { parseImageConfig, parseIndex, parseManifest, type Descriptor, type ImageConfig, type Manifest } from '../oci/types.ts';
import { isIndexType } from '../oci/media-types.ts';
import type { ImageRegistry } from '../remotes/image-registry.ts';
import { RegistryClient, type FetchResult } from '../remotes/registry.ts';
import { ingestRef } from '../remotes/ingest-ref.ts';
import { BlobFetches } from './blob-fetches.ts';
import { storeBlob } from '../content/store-blob.ts';
import { WorkLease } from './work-lease.ts';

export type PullEvent =
  | { type: 'resolved'; name: string; digest: string; mediaType: string }
  | { type: 'manifest'; digest: string; platform: string; layers: Descriptor[]; totalBytes: number }
  | { type: 'blob-start'; digest: string; kind: 'layer' | 'config' | 'manifest'; index?: number; total: number }
  | { type: 'blob-progress'; digest: string; offset: number; total: number }
  | { type: 'blob-done'; digest: string; index?: number; skipped: boolean; resumedFrom: number; transferred: number }
  | { type: 'unpacked'; chainIds: string[] }
  | { type: 'done'; record: ImageRecord };

/** What an unpacker gets: start applying layers as they land. */
export interface UnpackContext {
  name: string;
  manifest: Manifest;
  config: ImageConfig;
  store: ContentStore;
  /** Resolves when layer `index` is committed in the content store (rejects if its fetch fails). */
  whenLayerCommitted(index: number): Promise<void>;
  signal: AbortSignal;
}

export interface UnpackResult {
  snapshotter: string;
  chainIds: string[];
}

export interface PullOptions {
  ref: string;
  /** `os/arch[/variant]`; default `config.pull.platform`, else the host's. */
  platform?: string;
  config: Config;
  log: Logger;
  store: ContentStore;
  metadata: Metadata;
  /** Reuse a client (and its token cache) across pulls; one is made (and closed) otherwise. */
  client?: ImageRegistry;
  /** Share across concurrent pulls in one process so no blob is downloaded twice. */
  fetches?: BlobFetches<FetchResult>;
  signal?: AbortSignal;
  onProgress?: (e: PullEvent) => void;
  onLayerCommitted?: (index: number, desc: Descriptor) => void;
  unpack?: (ctx: UnpackContext) => Promise<UnpackResult>;
  /**
   * Called once the manifest is known and before any layer is fetched, with the bytes the pull
   * still has to download (layers not yet in the content store, plus the config): e.g. to make
   * room on a small disk. Throwing stops the pull.
   */
  beforeFetch?: (bytesToFetch: number) => Promise<void>;
  /** Extra labels for the image record. */
  labels?: Record<string, string>;
}

export interface PullResult {
  record: ImageRecord;
  manifest: Manifest;
  config: ImageConfig;
  /** Per blob: fetched, skipped, resumed. */
  blobs: Array<{ digest: string; skipped: boolean; resumedFrom: number; transferred: number }>;
}

/** A promise with its resolve/reject exposed: one per layer, settled when the layer is committed. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  return { promise, resolve, reject };
}

export async function pull(opts: PullOptions): Promise<PullResult> {
  const { store, metadata, log } = opts;
  const ref = parseReference(opts.ref);
  const name = formatReference(ref);
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) controller.abort(opts.signal.reason);
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  const signal = controller.signal;
  const client = opts.client ?? new RegistryClient({ config: opts.config, log });
  const fetches = opts.fetches ?? new BlobFetches<FetchResult>();
  const want: PlatformSpec = opts.platform
    ? parsePlatform(opts.platform)
    : opts.config.pull.platform
      ? parsePlatform(opts.config.pull.platform)
      : hostPlatform();
  const emit = (e: PullEvent) => {
    try {
      opts.onProgress?.(e);
    } catch (err) {
      log.warn({ err }, 'progress callback failed');
    }
  };

  // The lease expires on its own an hour after a pull dies (containerd #6294), and is renewed
  // while it runs.
  const lease = new WorkLease(metadata, { kind: 'pull', labels: { 'berth/pull': name } });
  const protect = (desc: Descriptor) => lease.add({ type: 'content', key: desc.digest }, { type: 'ingest', key: ingestRef(desc) });
  const blobs: PullResult['blobs'] = [];
  const smallWrites: Promise<void>[] = [];

  try {
    const resolved = await client.resolve(ref, signal);
    emit({ type: 'resolved', name, digest: resolved.desc.digest, mediaType: resolved.desc.mediaType });
    log.debug({ name, digest: resolved.desc.digest, mediaType: resolved.desc.mediaType }, 'resolved');
    protect(resolved.desc);
    // Small blobs are written to the store while the layers download; all are awaited before
    // the image is recorded.
    const keep = (p: Promise<void>) => {
      p.catch(() => {});
      smallWrites.push(p);
    };
    const rootBytes = resolved.bytes ?? (await client.fetchSmall(ref, resolved.desc, signal));
    keep(storeBlob(store, ingestRef(resolved.desc), resolved.desc.digest, rootBytes, signal));

    let manifestDesc = resolved.desc;
    let manifestBytes = rootBytes;
    // An index may point at further indexes (rare, but allowed): follow a few levels.
    for (let depth = 0; isIndexType(manifestDesc.mediaType); depth++) {
      if (depth >= 4) throw failedPrecondition(`${name}: indexes nested more than 4 deep`);
      const index = parseIndex(manifestBytes, `${name} (${manifestDesc.digest})`);
      manifestDesc = selectManifest(index.manifests, want, name);
      protect(manifestDesc);
      manifestBytes = await client.fetchSmall(ref, manifestDesc, signal);
      keep(storeBlob(store, ingestRef(manifestDesc), manifestDesc.digest, manifestBytes, signal));
    }
    const manifest = parseManifest(manifestBytes, `${name} (${manifestDesc.digest})`);
    protect(manifest.config);
    if (opts.beforeFetch) {
      let missing = 0;
      for (const l of [manifest.config, ...manifest.layers]) {
        if (
          !(await store.info(l.digest).then(
            () => true,
            () => false,
          ))
        )
          missing += l.size;
      }
      await opts.beforeFetch(missing);
    }
    const configFetch = client.fetchSmall(ref, manifest.config, signal).then(async (bytes) => {
      await storeBlob(store, ingestRef(manifest.config), manifest.config.digest, bytes, signal);
      return bytes;
    });
    configFetch.catch(() => {});

    // Layers start downloading now, while the config is fetched.
    const committed = manifest.layers.map(() => deferred());
    let firstFailure: unknown;
    const queue = new PQueue({ concurrency: opts.config.pull.concurrency });
    const layerJobs = manifest.layers.map((desc, index) => {
      const job = queue
        .add(async () => {
          signal.throwIfAborted();
          protect(desc);
          const { promise, joined } = fetches.run(desc.digest, async () => {
            emit({ type: 'blob-start', digest: desc.digest, kind: 'layer', index, total: desc.size });
            return client.fetchBlob(ref, desc, store, {
              signal,
              onProgress: (p) => emit({ type: 'blob-progress', digest: p.digest, offset: p.offset, total: p.total }),
            });
          });
          const r = await promise;
          const result = joined ? { skipped: true, resumedFrom: 0, transferred: 0 } : r;
          blobs.push({ digest: desc.digest, ...result });
          emit({ type: 'blob-done', digest: desc.digest, index, ...result });
          committed[index]!.resolve();
          opts.onLayerCommitted?.(index, desc);
        })
        .catch((err) => {
          committed[index]!.reject(err);
          // One failed layer stops the rest: no point downloading an image that cannot complete.
          if (!signal.aborted) {
            firstFailure = err;
            controller.abort(err);
          }
          throw err;
        });
      job.catch(() => {}); // settled below with allSettled; a failure must not count as unhandled meanwhile
      return job;
    });

    let configBytes: Buffer;
    let config: ImageConfig;
    try {
      configBytes = await configFetch;
      config = parseImageConfig(configBytes, `${name} config ${manifest.config.digest}`);
    } catch (err) {
      if (!signal.aborted) controller.abort(err);
      await Promise.allSettled(layerJobs);
      throw firstFailure ?? err;
    }
    const platform = formatPlatform(manifestDesc.platform ?? { os: config.os, architecture: config.architecture, variant: config.variant });
    if (!isIndexType(resolved.desc.mediaType) && (config.os !== want.os || config.architecture !== want.architecture)) {
      log.warn({ name, platform, wanted: formatPlatform(want) }, 'the image is for another platform than the one asked for');
    }
    const totalBytes = manifestBytes.length + configBytes.length + manifest.layers.reduce((n, l) => n + l.size, 0);
    emit({ type: 'manifest', digest: manifestDesc.digest, platform, layers: manifest.layers, totalBytes });

    const unpacking = opts.unpack?.({
      name,
      manifest,
      config,
      store,
      whenLayerCommitted: (i) => {
        const d = committed[i];
        return d ? d.promise : Promise.reject(failedPrecondition(`${name}: no layer ${i}`));
      },
      signal,
    });
    unpacking?.catch(() => {}); // awaited below, after the downloads settle

    const settled = await Promise.allSettled(layerJobs);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      if (unpacking) await unpacking.catch(() => {});
      throw firstRealError(firstFailure ?? failed.reason, opts.signal);
    }
    await Promise.all(smallWrites);
    let unpacked: UnpackResult | undefined;
    if (unpacking) {
      unpacked = await unpacking;
      emit({ type: 'unpacked', chainIds: unpacked.chainIds });
    }

    const previous = metadata.getImage(name);
    const keepUnpack = !unpacked && previous?.manifestDigest === manifestDesc.digest;
    const record = metadata.putImage({
      name,
      target: { digest: resolved.desc.digest, mediaType: resolved.desc.mediaType, size: resolved.desc.size },
      manifestDigest: manifestDesc.digest,
      configDigest: manifest.config.digest,
      platform,
      size: totalBytes,
      ...(unpacked ? { snapshotter: unpacked.snapshotter, chainIds: unpacked.chainIds } : {}),
      ...(keepUnpack && previous?.snapshotter ? { snapshotter: previous.snapshotter, chainIds: previous.chainIds } : {}),
      labels: { ...(previous?.labels ?? {}), ...(opts.labels ?? {}) },
    });
    emit({ type: 'done', record });
    return { record, manifest, config, blobs };
  } catch (err) {
    throw firstRealError(err, opts.signal);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    // Nothing of this pull may still be writing once it returns (its lease goes next).
    await Promise.allSettled(smallWrites);
    try {
      lease.release();
    } catch (err) {
      log.warn({ err, leaseId: lease.id }, 'could not delete the pull lease (it expires on its own)');
    }
    if (!opts.client) await client.close();
  }
}

/** After one layer fails and aborts the rest, report that failure, not the aborts it caused. */
function firstRealError(err: unknown, outer?: AbortSignal): unknown {
  if (outer?.aborted) return err instanceof BerthError && err.kind === 'Aborted' ? err : new BerthError('Aborted', 'pull interrupted', { cause: err });
  return err;
}
