/**
 * Unpacking an image's layers into snapshots keyed by chain ID, as containerd's unpacker does:
 * a layer whose chain ID is already committed is skipped (images share snapshots); otherwise it
 * is applied into `extract-<random> <chainID>` (an active snapshot, labelled with our pid so a
 * crash leaves nothing `recover()` cannot find), its diff_id verified, and only then committed
 * under the chain ID. A crash at any point leaves no committed snapshot that is incomplete.
 *
 * Overlap: `open(desc)` may wait until that blob is downloaded, so layer i applies while later
 * layers still download. With an `overlay`-format snapshotter, up to `parallelism` layers are
 * applied at once, each into its own parentless snapshot, and committed strictly in order onto
 * the previous chain ID. Whiteouts survive this (unlike containerd #13030) because the whiteout
 * form comes from the snapshotter's `layerFormat`, never from whether the snapshot had a parent.
 * A parallel layer whose tar implied directories it did not describe (their attributes come from
 * the parents) is applied again in order, so the result never depends on parallelism.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BerthError, invalidArgument, isKind } from '../errors.ts';
import type { LayerSource } from '../diff/apply-worker.ts';
import type { ApplyLimits } from '../diff/limits.ts';
import { JS_APPLIER, type SelectedApplier } from '../diff/layer-applier.ts';
import { chainIds } from '../oci/chain-id.ts';
import type { Descriptor } from '../oci/types.ts';
import { ownedBySelf } from '../snapshots/snapshot-owner.ts';
import type { Mount, Snapshotter, Usage } from '../snapshots/snapshotter.ts';
import type { UnpackContext, UnpackResult } from './pull.ts';
import { ingestRef } from '../remotes/ingest-ref.ts';
import { followBlob } from '../diff/live-blob.ts';

export interface LayerEvent {
  index: number;
  chainId: string;
  digest: string;
  state: 'exists' | 'applied';
  /** Wall time of the apply (open + decompress + write + verify + commit). */
  ms?: number;
  /** Uncompressed bytes applied. */
  bytes?: number;
}

export interface UnpackOptions {
  /** The manifest's layer descriptors, base first. */
  layers: Descriptor[];
  /** The config's `rootfs.diff_ids`, base first; must match `layers` one to one. */
  diffIds: string[];
  /**
   * Open a layer blob; may wait until it has been downloaded. With `speculative`, attempt 0 may
   * return the bytes as they download; if applying them fails, the layer is applied again with
   * attempt 1, which must open the verified blob.
   */
  open(desc: Descriptor, signal: AbortSignal, attempt: number): Promise<Readable>;
  speculative?: boolean;
  /**
   * Where the applier can read layer `desc` itself (a blob file, or an ingest file to follow).
   * When given, the native helper reads it (no byte passes through this process), and the
   * JavaScript path applies big layers on worker threads: either way `open` is then unused, the
   * main thread stays free for downloads, and parallel layers use more than one core.
   */
  openSource?: (desc: Descriptor, signal: AbortSignal, attempt: number) => Promise<LayerSource>;
  /** Layers smaller than this (compressed) are applied in-thread even with `openSource` (default 16 MiB). */
  workerMinBytes?: number;
  /** Awaited before layer `index` is committed (e.g. until its blob is verified and stored). */
  beforeCommit?: (index: number) => Promise<void>;
  snapshotter: Snapshotter;
  signal: AbortSignal;
  /** The code that applies each layer (src/diff/layer-applier.ts); default JavaScript. */
  applier?: SelectedApplier;
  /** Layers applied at once (overlay-format snapshotters only; native is always 1). Default: the applier's. */
  parallelism?: number;
  /** syncfs after each layer, before its commit (default true: containerd #5854 lost files). */
  sync?: boolean;
  /** Labels on every committed snapshot. */
  labels?: Record<string, string>;
  onLayer?: (e: LayerEvent) => void;
  warn?: (msg: string) => void;
  /** Bounds on each layer's apply (decompression bombs, free space); see src/diff/limits.ts. */
  limits?: Partial<ApplyLimits>;
}

interface Applied {
  key: string;
  /** The parent the snapshot was prepared on (undefined = parentless, rebased at commit). */
  preparedParent?: string;
  impliedDirs: string[];
  bytes: number;
  ms: number;
  usage?: Usage;
}

/** Unpack every layer; returns the chain IDs (base first), all committed in `opts.snapshotter`. */
export async function unpackImage(opts: UnpackOptions): Promise<string[]> {
  const { layers, diffIds, snapshotter: sn } = opts;
  if (layers.length !== diffIds.length) {
    throw invalidArgument(`image has ${layers.length} layers but ${diffIds.length} diff_ids: wrong diff ids`);
  }
  const chain = chainIds(diffIds);
  const exists = async (key: string) => {
    try {
      return (await sn.stat(key)).kind === 'committed';
    } catch (err) {
      if (isKind(err, 'NotFound')) return false;
      throw err;
    }
  };
  // Every ancestor of a committed chain ID is committed, so look from the top down.
  let start = 0;
  for (let i = chain.length - 1; i >= 0; i--) {
    if (await exists(chain[i]!)) {
      start = i + 1;
      break;
    }
  }
  for (let i = 0; i < start; i++) opts.onLayer?.({ index: i, chainId: chain[i]!, digest: layers[i]!.digest, state: 'exists' });
  if (start === chain.length) return chain;

  const inner = new AbortController();
  const signal = AbortSignal.any([opts.signal, inner.signal]);
  const applier = opts.applier ?? JS_APPLIER;
  const parallel = sn.layerFormat === 'overlay' ? Math.max(1, opts.parallelism ?? applier.parallelism) : 1;
  const pending = new Set<string>(); // extract keys not yet committed or removed
  const sync = opts.sync ?? true;

  const applyOne = async (i: number, parent: string | undefined, attempt = 0): Promise<Applied> => {
    const t0 = performance.now();
    const desc = layers[i]!;
    const key = `extract-${randomBytes(6).toString('hex')} ${chain[i]}`;
    const mounts = await sn.prepare(key, parent, { labels: ownedBySelf(), signal });
    pending.add(key);
    const target = applyTarget(mounts);
    try {
      const applyOpts = {
        root: target.dir,
        parents: target.parents,
        mediaType: desc.mediaType,
        whiteouts: sn.layerFormat,
        expectedDiffId: diffIds[i],
        layerDigest: desc.digest,
        sync,
        signal,
        warn: opts.warn,
        limits: opts.limits,
      };
      // The native helper reads the blob's file itself. A worker thread costs its start-up
      // (~0.1–0.3 s of CPU loading modules): only big layers pay off.
      const res =
        opts.openSource && applier.applyFrom
          ? await applier.applyFrom(await opts.openSource(desc, signal, attempt), applyOpts)
          : opts.openSource && desc.size >= (opts.workerMinBytes ?? 16 << 20)
            ? // Loaded only here: worker_threads and the worker's module stay out of a process that never uses them.
              await (await import('../diff/apply-worker.ts')).applyLayerInWorker(await opts.openSource(desc, signal, attempt), applyOpts)
            : await applier.apply(await opts.open(desc, signal, attempt), applyOpts);
      return { key, preparedParent: parent, impliedDirs: res.impliedDirs, bytes: res.size, ms: performance.now() - t0, usage: res.usage };
    } catch (err) {
      // A bomb or a full disk fails the stored blob the same way: no second attempt.
      if (!opts.speculative || attempt > 0 || signal.aborted || isKind(err, 'Unimplemented') || isKind(err, 'ResourceExhausted')) throw err;
      // The bytes read during the download were not the layer (a resumed ingest held garbage,
      // or the download restarted): start over from the verified blob.
      opts.warn?.(`layer ${i} (${desc.digest}): applying while downloading failed (${(err as Error).message}); applying the stored blob`);
      await sn.remove(key);
      pending.delete(key);
      return applyOne(i, parent, 1);
    }
  };

  const commit = async (i: number, a: Applied): Promise<void> => {
    const parent = i === 0 ? undefined : chain[i - 1];
    try {
      await sn.commit(chain[i]!, a.key, { labels: opts.labels, parent: a.preparedParent === parent ? undefined : parent, usage: a.usage, signal });
      pending.delete(a.key);
    } catch (err) {
      if (!isKind(err, 'AlreadyExists')) throw err;
      // Another unpacker committed the same chain ID first: theirs is as good as ours.
      await sn.remove(a.key);
      pending.delete(a.key);
    }
    opts.onLayer?.({ index: i, chainId: chain[i]!, digest: layers[i]!.digest, state: 'applied', ms: a.ms, bytes: a.bytes });
  };

  const named = (i: number, err: unknown): BerthError => {
    const d = layers[i]!.digest;
    if (err instanceof BerthError) {
      const msg = err.message.includes(d) ? err.message : `layer ${i} (${d}): ${err.message}`;
      return new BerthError(err.kind, msg, { cause: err, place: err.place });
    }
    if ((err as Error)?.name === 'AbortError') return new BerthError('Aborted', `layer ${i} (${d}): unpack aborted`, { cause: err });
    return new BerthError('Internal', `layer ${i} (${d}): ${(err as Error)?.message ?? String(err)}`, { cause: err });
  };

  // Start up to `parallel` applies ahead of the commit point; commit in order.
  const running = new Map<number, Promise<Applied>>();
  try {
    let next = start;
    const launch = () => {
      while (next < chain.length && running.size < parallel) {
        const i = next++;
        // The layer right after the committed prefix gets its real parent; later ones are rebased.
        const parent = i === 0 ? undefined : running.size === 0 ? chain[i - 1] : undefined;
        const p = applyOne(i, parent).catch((err) => {
          throw named(i, err);
        });
        p.catch(() => {}); // observed below, in order
        running.set(i, p);
      }
    };
    for (let i = start; i < chain.length; i++) {
      launch();
      let a = await running.get(i)!;
      running.delete(i);
      const parent = i === 0 ? undefined : chain[i - 1];
      if (a.preparedParent !== parent && a.impliedDirs.length > 0) {
        // Implied directories take their attributes from the parents, which this apply did not see.
        await sn.remove(a.key);
        pending.delete(a.key);
        a = await applyOne(i, parent).catch((err) => {
          throw named(i, err);
        });
      }
      await opts.beforeCommit?.(i);
      if (await exists(chain[i]!)) {
        await sn.remove(a.key);
        pending.delete(a.key);
        opts.onLayer?.({ index: i, chainId: chain[i]!, digest: layers[i]!.digest, state: 'exists' });
        continue;
      }
      await commit(i, a).catch((err) => {
        throw named(i, err);
      });
    }
    return chain;
  } catch (err) {
    inner.abort(err);
    throw err;
  } finally {
    if (pending.size || running.size) {
      // Let aborted applies settle before their snapshots are removed under them.
      await Promise.allSettled(running.values());
      for (const key of pending) await sn.remove(key).catch(() => {});
    }
  }
}

/** Where to apply a layer given an active snapshot's mounts: an overlay's upper dir, or a bind source. */
export function applyTarget(mounts: Mount[]): { dir: string; parents: string[] } {
  if (mounts.length === 1 && mounts[0]!.type === 'overlay') {
    let dir: string | undefined;
    let parents: string[] = [];
    for (const o of mounts[0]!.options) {
      if (o.startsWith('upperdir=')) dir = o.slice('upperdir='.length);
      else if (o.startsWith('lowerdir=')) parents = o.slice('lowerdir='.length).split(':');
    }
    if (dir) return { dir, parents };
  }
  if (mounts.length === 1 && (mounts[0]!.type === 'bind' || mounts[0]!.options.includes('rbind'))) {
    return { dir: mounts[0]!.source, parents: [] };
  }
  throw new BerthError('Unimplemented', `cannot apply a layer to mounts ${JSON.stringify(mounts)}`);
}

/**
 * The adapter `pull()` takes as `opts.unpack` (src/images/pull.ts): layers are applied as soon as
 * each is committed in the content store, while later ones still download.
 *
 * @example
 *   const sn = await openSnapshotter(config.root, config.snapshotter);
 *   await pull({ ...opts, unpack: pullUnpacker(sn) });
 */
export function pullUnpacker(
  snapshotter: Snapshotter,
  opts: Pick<UnpackOptions, 'applier' | 'parallelism' | 'sync' | 'labels' | 'onLayer' | 'warn' | 'limits'> & {
    /** Start applying each layer with its first downloaded bytes (default true). */
    applyWhileDownloading?: boolean;
    /**
     * Apply big layers on worker threads, reading blobs from the store's files (default false:
     * on the 2-core lab machine under load it measured no faster and cost ~30 MiB more RSS).
     */
    workers?: boolean;
  } = {},
): (ctx: UnpackContext) => Promise<UnpackResult> {
  return async (ctx) => {
    const layers = ctx.manifest.layers;
    // Applying while downloading follows the ingest's file, so it needs a store that has one.
    const ingestDataPath = ctx.store.ingestDataPath?.bind(ctx.store);
    const live = (opts.applyWhileDownloading ?? true) && ingestDataPath !== undefined;
    const indexOf = (desc: Descriptor) => {
      const i = layers.indexOf(desc);
      return i >= 0 ? i : layers.findIndex((l) => l.digest === desc.digest);
    };
    const chainIds = await unpackImage({
      ...opts,
      layers,
      diffIds: ctx.config.rootfs.diff_ids,
      snapshotter,
      signal: ctx.signal,
      speculative: live,
      beforeCommit: (i) => ctx.whenLayerCommitted(i),
      // Only a store that keeps blobs as files (it has ingest files) can hand the applier a path.
      openSource: !(opts.workers || (opts.applier?.applyFrom && ingestDataPath))
        ? undefined
        : async (desc, _signal, attempt): Promise<LayerSource> => {
            const i = indexOf(desc);
            if (live && attempt === 0) {
              const committed = ctx.whenLayerCommitted(i);
              committed.catch(() => {});
              return { kind: 'follow', dataPath: ingestDataPath!(ingestRef(desc)), blobPath: ctx.store.blobPath(desc.digest), size: desc.size, committed };
            }
            await ctx.whenLayerCommitted(i);
            return { kind: 'file', path: ctx.store.blobPath(desc.digest) };
          },
      open: async (desc, signal, attempt) => {
        const i = indexOf(desc);
        if (live && attempt === 0) {
          const committed = ctx.whenLayerCommitted(i);
          committed.catch(() => {});
          return followBlob({ dataPath: ingestDataPath!(ingestRef(desc)), blobPath: ctx.store.blobPath(desc.digest), size: desc.size, committed, signal });
        }
        await ctx.whenLayerCommitted(i);
        return ctx.store.open(desc.digest, { signal });
      },
    });
    return { snapshotter: snapshotter.name, chainIds };
  };
}
