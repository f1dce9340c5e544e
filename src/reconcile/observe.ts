/**
 * observe(): the actual state, read fresh each turn from the metadata, the content store, the
 * snapshotter and the runtime (runc + supervisor files), in the plain-data form plan() takes.
 * Reads only; never repairs (repairs are plan steps, so they are explained and recorded).
 */
import { readdir } from 'node:fs/promises';
import { isKind } from '../errors.ts';
import { ifExists } from '../durable-file.ts';
import type { NormalisedContainerSpec } from '../manifest/spec-hash.ts';
import type { DesiredState } from '../manifest/types.ts';
import type { ImageRecord } from '../metadata/metadata.ts';
import { observeHeldPorts } from '../network/held-ports.ts';
import { processOwners } from './process-owner.ts';
import { parseReference } from '../oci/reference.ts';
import type { ContainerStatus } from '../runtime/container-runtime.ts';
import type { SnapshotInfo } from '../snapshots/snapshotter.ts';
import { BlobChecker } from './blob-check.ts';
import { volumesDir, type ReconcileDeps } from './deps.ts';
import { desiredImages } from './plan.ts';
import { retiredImages } from './prune-images.ts';
import { RemoteChecks } from './remote-checks.ts';
import { ABSENT_REASON_LABEL, type ActualContainer, type ActualImage, type ActualState, type TaskState } from './types.ts';

/** Registries that failed recently, so plan() waits on them instead of pulling (offline first). */
export class RegistryHealth {
  private readonly downUntil = new Map<string, number>();
  private readonly holdMs: number;
  constructor(holdMs = 30_000) {
    this.holdMs = holdMs;
  }

  markDown(host: string, now: number): void {
    this.downUntil.set(host, now + this.holdMs);
  }
  markUp(host: string): void {
    this.downUntil.delete(host);
  }
  unreachable(now: number): string[] {
    return [...this.downUntil].filter(([, until]) => until > now).map(([host]) => host);
  }
}

/** Whether every committed layer snapshot of the image is recorded AND its directory is on disk. */
async function isUnpacked(deps: ReconcileDeps, rec: ImageRecord): Promise<boolean> {
  if (!rec.chainIds?.length || rec.snapshotter !== deps.snapshotter.name) return false;
  for (const chainId of rec.chainIds) {
    try {
      const info = await deps.snapshotter.stat(chainId);
      if (info.kind !== 'committed') return false;
      if (!(await deps.snapshotter.onDisk(info))) return false;
    } catch (err) {
      if (isKind(err, 'NotFound')) return false;
      throw err;
    }
  }
  return true;
}

async function observeImage(deps: ReconcileDeps, rec: ImageRecord, checker: BlobChecker, signal?: AbortSignal): Promise<ActualImage> {
  const blobs = await checker.blobsOf(deps.content, rec);
  let blobsPresent = blobs !== undefined;
  const corruptBlobs: string[] = [];
  // An unreadable manifest that is on disk is itself corrupt.
  if (!blobs && (await checker.check(deps.content, rec.manifestDigest, undefined, signal)) !== 'missing') corruptBlobs.push(rec.manifestDigest);
  for (const { digest, size } of blobs ?? []) {
    const condition = await checker.check(deps.content, digest, size, signal);
    if (condition === 'ok') continue;
    blobsPresent = false;
    if (condition === 'corrupt') corruptBlobs.push(digest);
  }
  if (corruptBlobs.length) {
    checker.forgetManifest(rec.manifestDigest);
    deps.log.warn({ image: rec.name, blobs: corruptBlobs }, 'blobs corrupt on disk; they will be fetched again');
  }
  return {
    ref: rec.name,
    targetDigest: rec.target.digest,
    manifestDigest: rec.manifestDigest,
    blobsPresent,
    unpacked: blobsPresent && (await isUnpacked(deps, rec)),
    unpackedBefore: Boolean(rec.chainIds?.length) && rec.snapshotter === deps.snapshotter.name,
    platform: rec.platform,
    ...(corruptBlobs.length ? { corruptBlobs } : {}),
  };
}

/** The writable layer's directory and every layer under it are on disk (and recorded). */
async function rootfsOnDisk(deps: ReconcileDeps, layer: SnapshotInfo): Promise<boolean> {
  let s: SnapshotInfo | undefined = layer;
  while (s) {
    if (!(await deps.snapshotter.onDisk(s))) return false;
    if (s.parent === undefined) return true;
    s = await deps.snapshotter.stat(s.parent).catch(() => undefined);
  }
  return false;
}

function taskState(st: ContainerStatus | undefined): TaskState {
  if (!st) return 'absent';
  switch (st.state) {
    case 'running':
    case 'unknown': // running without its supervisor: leave it be rather than start a second task
      return 'running';
    case 'exited':
    case 'stopped':
      return 'exited';
    case 'created':
      return 'created';
  }
}

export interface ObserveOptions {
  health: RegistryHealth;
  /** How `Always` tags are checked at their registry (default: wait for each answer). */
  remote?: RemoteChecks;
  /** How blobs are checked (default: presence and size only). */
  blobs?: BlobChecker;
  signal?: AbortSignal;
}

export async function observe(deps: ReconcileDeps, desired: DesiredState, opts: ObserveOptions): Promise<ActualState> {
  const now = deps.now?.() ?? Date.now();
  const records = deps.metadata.listImages();
  const checker = opts.blobs ?? new BlobChecker({ rehash: false });
  checker.beginTurn();
  const images = await Promise.all(records.map((r) => observeImage(deps, r, checker, opts.signal)));

  // `pullPolicy: Always`: ask the registry where the tag points now, unless it is known to be down.
  const down = new Set(opts.health.unreachable(now));
  await Promise.all(
    desiredImages(desired)
      .filter((d) => d.pullPolicy === 'Always')
      .map(async (d) => {
        const host = parseReference(d.ref).domain;
        const image = images.find((i) => i.ref === d.ref);
        if (!image || down.has(host)) return;
        const remote = opts.remote ?? new RemoteChecks();
        const digest = await remote.check(
          d.ref,
          async () =>
            (await (await deps.registry()).resolve(d.ref, AbortSignal.any([AbortSignal.timeout(10_000), ...(opts.signal ? [opts.signal] : [])]))).desc.digest,
          {
            onUp: () => opts.health.markUp(host),
            onDown: (err) => {
              if (opts.signal?.aborted) return;
              deps.log.warn({ image: d.ref, err }, 'cannot resolve image; keeping what is present');
              opts.health.markDown(host, deps.now?.() ?? Date.now());
            },
          },
        );
        opts.signal?.throwIfAborted();
        if (digest !== undefined) image.remoteDigest = digest;
      }),
  );

  const statuses = new Map((await deps.runtime.list()).map((s) => [s.name, s]));
  const containers: ActualContainer[] = [];
  for (const rec of deps.metadata.listContainers()) {
    const st = statuses.get(rec.name);
    let state = taskState(st);
    // Berth removed it itself (to repair its image's layers), and said why on its record.
    let absentReason = state === 'absent' ? rec.labels[ABSENT_REASON_LABEL] : undefined;
    // Its writable layer, or a layer under it, removed behind berth's back: it must be made again.
    if (state !== 'absent') {
      const layer = await deps.snapshotter.stat(rec.snapshotKey).catch(() => undefined);
      if (!layer || !(await rootfsOnDisk(deps, layer))) [state, absentReason] = ['absent', 'layers of its root filesystem are gone from disk'];
    }
    const exit = st?.exit;
    containers.push({
      name: rec.name,
      specHash: rec.specHash,
      imageRef: rec.image,
      imageDigest: rec.imageDigest,
      appliedSpec: rec.spec as NormalisedContainerSpec,
      ...(absentReason ? { absentReason } : {}),
      state,
      exitCode: exit?.exitCode,
      oomKilled: exit?.oomKilled,
      ...(exit?.lost ? { exitLost: true } : {}),
      backoffStreak: st?.record.backoffStreak ?? 0,
      startedAt: st?.startedAtMs,
      finishedAt: st?.finishedAtMs,
    });
  }

  const volumeEntries = (await ifExists(readdir(volumesDir(deps.config.root), { withFileTypes: true }))) ?? [];
  const volumes = volumeEntries.filter((d) => d.isDirectory()).map((d) => d.name);

  const portsHeld = await observeHeldPorts(deps.config.root, desired.containers, { ownerOf: processOwners(deps.runtime), signal: opts.signal });
  const retired = retiredImages(deps.metadata, desired);
  const retiredContainers = deps.metadata
    .listRetiredContainers()
    .map((r) => ({ name: r.record.name, specHash: r.record.specHash, imageDigest: r.record.imageDigest }));
  const secretProblems = (await deps.secrets?.problems(desired, opts.signal)) ?? {};
  return {
    images,
    containers,
    volumes,
    unreachableRegistries: opts.health.unreachable(now),
    ...(retired.length ? { retiredImages: retired } : {}),
    ...(retiredContainers.length ? { retiredContainers } : {}),
    ...(Object.keys(portsHeld).length ? { portsHeld } : {}),
    ...(Object.keys(secretProblems).length ? { secretProblems } : {}),
  };
}
