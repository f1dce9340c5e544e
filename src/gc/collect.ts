/**
 * Garbage collection: mark from the metadata's roots through manifests, configs, layers and
 * snapshots, then sweep everything unmarked (blobs, snapshots children first, ingests, and, only
 * when asked, named volumes no container or current generation uses).
 *
 * Also kept: active snapshots labelled (`berth.dev/owner-pid`) by a live process (an unpack in
 * progress); snapshots created or committed since the oldest live lease began (an unpack commits
 * chain IDs before the image record names them, and the pull's lease covers that window);
 * anything younger than `graceMs`; and every ancestor of a kept snapshot.
 *
 * Roots (containerd's, adapted):
 *  - every image record: its target (index or manifest) → manifests → config + layers, plus its
 *    recorded manifest and config digests; its chain IDs → snapshots (→ parents);
 *  - every container record: its image's record, its manifest digest, its writable snapshot;
 *  - every lease not expired: its content, snapshot and ingest resources.
 *
 * The protocol writers follow: hold a lease covering the blobs, ingests and snapshots you create
 * until the image (or container) record that refers to them is written. To narrow the window for a
 * writer that does not, the candidates (blobs, snapshots, ingests) are listed BEFORE the roots are
 * read: something created after the listing is never a candidate.
 *
 * Never loses what it cannot prove unreferenced: if a manifest an image needs cannot be read
 * (missing or unparsable), its layers are unknown, so no blob is swept this time (the report says
 * why; the reconciler re-fetches the manifest). Named volumes are swept only with `volumes: true`
 * and only when a current generation exists to say which are declared.
 */
import { readdir, rm, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { compareText } from '../compare-text.ts';
import type { ContentStore } from '../content/content.ts';
import { ifExists } from '../durable-file.ts';
import { BerthError, isKind } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ContainerRecord, ImageRecord, Lease, Metadata } from '../metadata/metadata.ts';
import { isIndexType, isManifestType } from '../oci/media-types.ts';
import { parseManifestOrIndex } from '../oci/types.ts';
import { ownedByLiveProcess } from '../snapshots/snapshot-owner.ts';
import type { SnapshotInfo, Snapshotter } from '../snapshots/snapshotter.ts';
import { mark } from './mark.ts';

export type GcItemKind = 'blob' | 'snapshot' | 'ingest' | 'volume';

export interface GcItem {
  kind: GcItemKind;
  /** Digest, snapshot key, ingest ref or volume name. */
  key: string;
  /** For snapshots: which snapshotter. */
  snapshotter?: string;
  /** Bytes it takes (a snapshot's own directory; an ingest's partial data). */
  size: number;
  /** Set after a sweep: whether it was removed, or why not. */
  removed?: boolean;
  error?: string;
}

export interface GcReport {
  /** True when nothing was removed on purpose: a dry run, or a sweep refused (see `warnings`). */
  dryRun: boolean;
  /** Unreferenced things found (and, unless dryRun, swept), in sweep order. */
  items: GcItem[];
  /** Sum of `items[].size`. */
  totalBytes: number;
  /** Sum of sizes actually removed (0 on a dry run). */
  removedBytes: number;
  /** How many of each kind were kept because something references them. */
  kept: Record<GcItemKind, number>;
  /** Why parts of the sweep were skipped (e.g. a manifest that could not be read). */
  warnings: string[];
  /** Expired leases whose records were deleted (what they protected is swept with the rest). */
  expiredLeases: string[];
  durationMs: number;
}

export interface CollectOptions {
  metadata: Metadata;
  content: ContentStore;
  snapshotters: Snapshotter[];
  dryRun?: boolean;
  /** Also sweep unused named volumes under `volumesDir` (`berth gc --volumes`). */
  volumes?: boolean;
  /** `<root>/volumes`; volumes are never touched without it. */
  volumesDir?: string;
  /**
   * Keep unreferenced blobs, snapshots and ingests younger than this (by creation, or last update
   * for ingests). Default 0: leases are the protocol; a grace only narrows the window for a writer
   * that holds none (e.g. a daemon collecting while its own unpack commits layers).
   */
  graceMs?: number;
  /**
   * Sweep even when the metadata holds no record at all (no image, container, lease nor
   * generation) while the disk holds content. Without it such a collection only reports: that
   * state is what a lost or replaced metadata.db looks like, and sweeping would delete every
   * image, including air-gapped ones nothing can fetch again.
   */
  force?: boolean;
  signal?: AbortSignal;
  log?: Logger;
  now?: () => Date;
}

// Node ids in the reference graph. Strings keep `mark` generic and the sets cheap.
const blobNode = (digest: string) => `blob:${digest}`;
const snapNode = (snapshotter: string, key: string) => `snapshot:${snapshotter}/${key}`;
const ingestNode = (ref: string) => `ingest:${ref}`;
const imageNode = (name: string) => `image:${name}`;
const containerNode = (name: string) => `container:${name}`;
const leaseNode = (id: string) => `lease:${id}`;

export async function collectGarbage(opts: CollectOptions): Promise<GcReport> {
  const started = Date.now();
  const { metadata, content, snapshotters, signal, log } = opts;
  const dryRun = opts.dryRun ?? false;
  const now = (opts.now ?? (() => new Date()))();
  const warnings: string[] = [];

  // 1. Candidates first (see the header: what appears later is never swept).
  const blobs = new Map<string, { size: number; createdAt: Date }>();
  for await (const info of content.walk(signal)) blobs.set(info.digest, { size: info.size, createdAt: info.createdAt });
  const snapshots = new Map<string, { sn: Snapshotter; info: SnapshotInfo }>();
  for (const sn of snapshotters) {
    for await (const info of sn.walk()) {
      signal?.throwIfAborted();
      snapshots.set(snapNode(sn.name, info.key), { sn, info });
    }
  }
  const ingests = await content.listIngests();

  // 2. Roots, read in one transaction so they are mutually consistent.
  const { images, containers, retired, leases, desired, anyGeneration, anyLease } = metadata.transaction(() => ({
    images: metadata.listImages(),
    containers: metadata.listContainers(),
    // Containers a rollout replaced stay whole (writable layer, image) until it is confirmed.
    retired: metadata.listRetiredContainers(),
    leases: metadata.activeLeases(now),
    desired: metadata.currentGeneration()?.desired,
    anyGeneration: metadata.latestGeneration() !== undefined,
    anyLease: metadata.listLeases().length > 0,
  }));
  const hasCurrentGeneration = desired !== undefined;
  const amnesia = !anyGeneration && !anyLease && images.length === 0 && containers.length === 0;

  // 3. The reference graph: static edges from records, then manifests read from the store.
  const edges = new Map<string, Set<string>>();
  const link = (from: string, to: string) => {
    let s = edges.get(from);
    if (!s) edges.set(from, (s = new Set()));
    s.add(to);
  };
  const roots: string[] = [];
  const manifestsToRead: ManifestQueue = [];

  for (const img of images) linkImage(img, roots, link, manifestsToRead);
  const imagesByName = new Map(images.map((i) => [i.name, i]));
  for (const c of containers) linkContainer(c, imagesByName, roots, link, manifestsToRead);
  for (const r of retired) {
    if (r.image) linkImage(r.image, roots, link, manifestsToRead);
    linkContainer(r.record, imagesByName, roots, link, manifestsToRead);
  }
  for (const l of leases) linkLease(l, snapshotters, roots, link);
  for (const [node, { sn, info }] of snapshots) if (info.parent) link(node, snapNode(sn.name, info.parent));

  let contentComplete = true;
  const followed = new Set<string>();
  const unreadable = new Map<string, string>(); // digest → why
  const cannotFollow = (m: ManifestQueue[number], why: string) => {
    unreadable.set(m.digest, why);
    // An index's other platforms were never pulled: absent is normal unless the image needs it.
    if (!m.required) return;
    contentComplete = false;
    warnings.push(`${m.owner}: cannot ${why}; no blob swept this time`);
  };
  while (manifestsToRead.length > 0) {
    signal?.throwIfAborted();
    const m = manifestsToRead.pop()!;
    if (followed.has(m.digest)) continue;
    const known = unreadable.get(m.digest);
    if (known !== undefined) {
      if (m.required) cannotFollow(m, known);
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = await content.readBlob(m.digest, signal);
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err; // an I/O error: stop rather than guess
      cannotFollow(m, `read ${m.digest} (${errorMessage(err)})`);
      continue;
    }
    let parsed: ReturnType<typeof parseManifestOrIndex>;
    try {
      parsed = parseManifestOrIndex(bytes, m.mediaType, `${m.owner}: ${m.digest}`);
    } catch (err) {
      // e.g. an artifact type in an index that is not ours to follow, or a damaged manifest
      cannotFollow(m, `parse ${m.digest} (${errorMessage(err)})`);
      continue;
    }
    followed.add(m.digest);
    const from = blobNode(m.digest);
    if (parsed.kind === 'index') {
      for (const d of parsed.index.manifests) {
        link(from, blobNode(d.digest));
        if (isIndexType(d.mediaType) || isManifestType(d.mediaType)) {
          manifestsToRead.push({ digest: d.digest, mediaType: d.mediaType, required: false, owner: m.owner });
        }
      }
    } else {
      link(from, blobNode(parsed.manifest.config.digest));
      for (const layer of parsed.manifest.layers) link(from, blobNode(layer.digest));
    }
  }

  // 4. Mark.
  const reachable = mark(roots, (n) => edges.get(n) ?? []);

  // 5. What is unreferenced, in sweep order: snapshots (children first), blobs, ingests, volumes.
  const graceMs = opts.graceMs ?? 0;
  const young = (d: Date) => now.getTime() - d.getTime() < graceMs;
  const items: GcItem[] = [];
  const kept: Record<GcItemKind, number> = { blob: 0, snapshot: 0, ingest: 0, volume: 0 };

  // Snapshots made or committed since the oldest live lease began may be that work's (an unpack
  // commits chain IDs before the image record names them): kept while the lease lives.
  const leaseEpoch = leases.length > 0 ? Math.min(...leases.map((l) => l.createdAt.getTime())) : Number.POSITIVE_INFINITY;
  const sinceLease = (info: SnapshotInfo) => Math.max(info.created.getTime(), info.updated.getTime()) >= leaseEpoch;
  // Kept snapshots keep their ancestors too (remove would refuse a parent anyway). An active
  // snapshot owned by a live process is an unpack in progress there.
  const keptSnapshots = new Set(
    mark(
      [...snapshots]
        .filter(([node, { info }]) => reachable.has(node) || young(info.created) || ownedByLiveProcess(info) || sinceLease(info))
        .map(([node]) => node),
      (n) => edges.get(n) ?? [],
    ),
  );
  const deadSnapshots = [...snapshots].filter(([node]) => !keptSnapshots.has(node));
  kept.snapshot = snapshots.size - deadSnapshots.length;
  for (const { sn, info } of childrenFirst(deadSnapshots.map(([, v]) => v))) {
    let size = 0;
    try {
      size = (await sn.usage(info.key)).size;
    } catch (err) {
      if (!isKind(err, 'NotFound')) log?.warn({ err, key: info.key }, 'gc: snapshot usage failed');
    }
    items.push({ kind: 'snapshot', key: info.key, snapshotter: sn.name, size });
  }

  if (contentComplete) {
    for (const [digest, { size, createdAt }] of blobs) {
      if (reachable.has(blobNode(digest)) || young(createdAt)) kept.blob++;
      else items.push({ kind: 'blob', key: digest, size });
    }
  } else {
    kept.blob = blobs.size;
  }

  for (const ing of ingests) {
    if (reachable.has(ingestNode(ing.ref)) || young(ing.updatedAt)) kept.ingest++;
    else items.push({ kind: 'ingest', key: ing.ref, size: ing.offset });
  }

  if (opts.volumes && opts.volumesDir) {
    if (!hasCurrentGeneration) {
      warnings.push('no applied generation: cannot tell which volumes are declared, so none is removed');
    } else {
      const used = volumesInUse(containers, desired);
      for (const name of await listDirs(opts.volumesDir)) {
        if (used.has(name)) kept.volume++;
        else items.push({ kind: 'volume', key: name, size: await treeSize(join(opts.volumesDir, name)) });
      }
    }
  } else if (opts.volumesDir) {
    kept.volume = (await listDirs(opts.volumesDir)).length;
  }

  // 6. Sweep, unless only reporting. A metadata that remembers nothing while the disk holds
  // content looks exactly like a lost or replaced metadata.db: refuse unless forced.
  let reportOnly = dryRun;
  if (amnesia && (blobs.size > 0 || snapshots.size > 0) && !opts.force) {
    reportOnly = true;
    warnings.push(
      `the metadata (${metadata.path}) holds no image, container, lease or generation while the disk holds ` +
        `${blobs.size} blobs and ${snapshots.size} snapshots: if it was lost or replaced, sweeping would delete every image; ` +
        `${dryRun ? 'a real run removes' : 'removed'} nothing (re-import or apply first, or force)`,
    );
  }
  // Expired lease records go first (best effort: on a full disk a metadata write may fail, while
  // the unlinks below need no space and are what frees it).
  let removedBytes = 0;
  let expiredLeases: string[] = [];
  if (!reportOnly) {
    try {
      expiredLeases = metadata.deleteExpiredLeases(now);
    } catch (err) {
      warnings.push(`could not delete expired leases: ${errorMessage(err)}`);
    }
    for (const item of items) {
      signal?.throwIfAborted();
      try {
        await sweep(item, { content, snapshots, volumesDir: opts.volumesDir });
        item.removed = true;
        removedBytes += item.size;
      } catch (err) {
        if (isKind(err, 'NotFound')) {
          item.removed = true; // someone else removed it: the goal is met
          continue;
        }
        item.removed = false;
        item.error = errorMessage(err);
        log?.warn({ kind: item.kind, key: item.key, err: item.error }, 'gc: could not remove');
      }
    }
  }

  const totalBytes = items.reduce((a, i) => a + i.size, 0);
  const report: GcReport = { dryRun: reportOnly, items, totalBytes, removedBytes, kept, warnings, expiredLeases, durationMs: Date.now() - started };
  (items.length > 0 || warnings.length > 0 ? log?.info.bind(log) : log?.debug.bind(log))?.(
    { dryRun: reportOnly, unreferenced: items.length, totalBytes, removedBytes, kept, warnings, durationMs: report.durationMs },
    reportOnly ? 'gc: report only' : 'gc: collected',
  );
  return report;
}

// ------------------------------------------------------------------------------------ graph

type Link = (from: string, to: string) => void;
type ManifestQueue = Array<{ digest: string; mediaType?: string; required: boolean; owner: string }>;

function linkImage(img: ImageRecord, roots: string[], link: Link, queue: ManifestQueue): void {
  const node = imageNode(img.name);
  const owner = `image ${img.name}`;
  roots.push(node);
  link(node, blobNode(img.target.digest));
  link(node, blobNode(img.manifestDigest));
  link(node, blobNode(img.configDigest));
  queue.push({ digest: img.target.digest, mediaType: img.target.mediaType, required: true, owner });
  if (img.manifestDigest !== img.target.digest) queue.push({ digest: img.manifestDigest, required: true, owner });
  if (img.snapshotter && img.chainIds) {
    for (const chainId of img.chainIds) link(node, snapNode(img.snapshotter, chainId));
  }
}

function linkContainer(c: ContainerRecord, imagesByName: Map<string, ImageRecord>, roots: string[], link: Link, queue: ManifestQueue): void {
  const node = containerNode(c.name);
  roots.push(node);
  link(node, snapNode(c.snapshotter, c.snapshotKey));
  if (imagesByName.has(c.image)) link(node, imageNode(c.image));
  // The image record may have moved on to a newer digest: keep what this container runs.
  if (c.imageDigest) {
    link(node, blobNode(c.imageDigest));
    queue.push({ digest: c.imageDigest, required: false, owner: `container ${c.name}` });
  }
}

function linkLease(l: Lease, snapshotters: Snapshotter[], roots: string[], link: Link): void {
  const node = leaseNode(l.id);
  roots.push(node);
  for (const r of l.resources) {
    if (r.type === 'content') link(node, blobNode(r.key));
    else if (r.type === 'ingest') link(node, ingestNode(r.key));
    else if (r.type === 'snapshot') {
      // `<snapshotter>/<key>` names one snapshotter; a bare key protects it in every snapshotter.
      const slash = r.key.indexOf('/');
      const named = slash > 0 ? snapshotters.find((s) => s.name === r.key.slice(0, slash)) : undefined;
      if (named) link(node, snapNode(named.name, r.key.slice(slash + 1)));
      for (const s of snapshotters) link(node, snapNode(s.name, r.key));
    }
  }
}

/** Order snapshots so that every child comes before its parent (remove fails on a parent). */
function childrenFirst<T extends { sn: Snapshotter; info: SnapshotInfo }>(list: T[]): T[] {
  const byNode = new Map(list.map((x) => [snapNode(x.sn.name, x.info.key), x]));
  const depth = new Map<string, number>();
  const depthOf = (node: string, seen = new Set<string>()): number => {
    const known = depth.get(node);
    if (known !== undefined) return known;
    const x = byNode.get(node);
    if (!x?.info.parent || seen.has(node)) return 0;
    seen.add(node);
    const d = 1 + depthOf(snapNode(x.sn.name, x.info.parent), seen);
    depth.set(node, d);
    return d;
  };
  return [...list].sort((a, b) => depthOf(snapNode(b.sn.name, b.info.key)) - depthOf(snapNode(a.sn.name, a.info.key)) || compareText(a.info.key, b.info.key));
}

// ---------------------------------------------------------------------------------- volumes

/**
 * Volume names a container record mounts or the current generation declares or mounts. The
 * records hold JSON written by other layers, so this reads them defensively: anything that looks
 * like `{ type: 'volume', name }` in `mounts`, or `metadata.name` in `volumes`.
 */
function volumesInUse(containers: ContainerRecord[], desired: unknown): Set<string> {
  const used = new Set<string>();
  const fromMounts = (spec: any) => {
    for (const m of Array.isArray(spec?.mounts) ? spec.mounts : []) {
      if (m?.type === 'volume' && typeof m.name === 'string') used.add(m.name);
    }
  };
  for (const c of containers) {
    fromMounts(c.spec);
    fromMounts((c.spec as any)?.spec);
  }
  const d = desired as any;
  for (const v of Array.isArray(d?.volumes) ? d.volumes : []) {
    const name = v?.metadata?.name ?? v?.name;
    if (typeof name === 'string') used.add(name);
  }
  for (const c of Array.isArray(d?.containers) ? d.containers : []) fromMounts(c?.spec ?? c);
  return used;
}

async function listDirs(dir: string): Promise<string[]> {
  const entries = (await ifExists(readdir(dir, { withFileTypes: true }))) ?? [];
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** Bytes under a directory (apparent sizes; hard links counted once). */
async function treeSize(path: string, seen = new Set<string>()): Promise<number> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return 0;
  }
  const id = `${st.dev}:${st.ino}`;
  if (seen.has(id)) return 0;
  seen.add(id);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await treeSize(join(path, name), seen);
  return total;
}

// ------------------------------------------------------------------------------------ sweep

async function sweep(
  item: GcItem,
  ctx: { content: ContentStore; snapshots: Map<string, { sn: Snapshotter; info: SnapshotInfo }>; volumesDir?: string },
): Promise<void> {
  switch (item.kind) {
    case 'blob':
      return ctx.content.delete(item.key);
    case 'snapshot': {
      const entry = ctx.snapshots.get(snapNode(item.snapshotter!, item.key));
      if (!entry) throw new BerthError('NotFound', `snapshot ${item.snapshotter}/${item.key} not found`);
      return entry.sn.remove(item.key);
    }
    case 'ingest':
      // FailedPrecondition if a live writer holds it: reported, kept, tried again next time.
      return ctx.content.abortIngest(item.key);
    case 'volume':
      await rm(join(ctx.volumesDir!, item.key), { recursive: true, force: true });
      return;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
