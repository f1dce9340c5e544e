/**
 * Making and unmaking containers from plan steps: the writable snapshot on top of the image, the
 * runtime's bundle and task, and the metadata record that ties them together.
 *
 * Order matters for crash safety: the record is written before the task is made (a crash leaves a
 * record whose container is `absent`, which the next turn makes again), and removed after
 * everything is unmade.
 *
 * Updates never leave the device worse: the new container is checked against its image (command,
 * user, bind sources, the bundle's spec) on a freshly prepared writable layer BEFORE the old one is
 * stopped; the old one is then retired, not deleted (its writable layer and image stay, recorded
 * durably first), so that a rollback can put it back exactly as it was.
 */
import { randomBytes } from 'node:crypto';
import { failedPrecondition, isKind, notFound } from '../errors.ts';
import { specHash, type NormalisedContainerSpec } from '../manifest/spec-hash.ts';
import type { ContainerDoc } from '../manifest/types.ts';
import { chainIds } from '../oci/chain-id.ts';
import { parseImageConfig, parseManifest } from '../oci/types.ts';
import type { ContainerInput, ContainerRecord, ImageRecord, Metadata, RetiredContainer } from '../metadata/metadata.ts';
import { resolveHealthcheck, type Healthcheck } from '../runtime/health/healthcheck.ts';
import type { CreateRequest } from '../runtime/runtime.ts';
import { waitSuccessorReady } from './successor-ready.ts';
import type { ReconcileDeps } from './deps.ts';
import { checkNetworking, detachContainer, reattachContainer, specOnNetworks, type NetworkContext } from '../network/networks.ts';
import { processOwners } from './process-owner.ts';

const networkContext = (deps: ReconcileDeps, signal: AbortSignal): NetworkContext => ({
  root: deps.config.root,
  signal,
  warn: (m) => deps.log.warn(m),
  ownerOf: processOwners(deps.runtime),
});

export interface CreateOptions {
  /** Keep the container being replaced (stopped, with its writable layer) for a rollback. */
  retire?: boolean;
  /**
   * `update.strategy: start-first`: a running container is replaced only once its successor runs
   * (and is healthy, if it has a check) beside it; see replaceStartFirst.
   */
  startFirst?: boolean;
}

export async function createContainer(
  deps: ReconcileDeps,
  doc: ContainerDoc,
  spec: NormalisedContainerSpec,
  generation: number,
  signal: AbortSignal,
  opts: CreateOptions = {},
): Promise<void> {
  const name = doc.metadata.name;
  const image = deps.metadata.getImage(doc.imageRef);
  if (!image?.chainIds?.length || image.snapshotter !== deps.snapshotter.name) {
    throw failedPrecondition(`container ${name}: image ${doc.imageRef} is not unpacked yet`);
  }
  const config = parseImageConfig(await deps.content.readBlob(image.configDigest, signal), `image ${image.name} config`);
  const snapshotKey = `container/${name}/${randomBytes(6).toString('hex')}`;
  const hash = specHash(spec, image.manifestDigest);
  const mounts = await deps.snapshotter.prepare(snapshotKey, image.chainIds.at(-1), { labels: { 'berth.dev/container': name }, signal });
  const request: CreateRequest = {
    name,
    spec: doc.spec,
    imageRef: doc.imageRef,
    imageDigest: image.manifestDigest,
    imageConfig: config,
    snapshotKey,
    snapshotChain: [...image.chainIds].reverse(),
    mounts,
    specHash: hash,
  };
  // Everything that can be checked without stopping the old container is checked first.
  try {
    await deps.runtime.validate(request);
    await checkNetworking(networkContext(deps, signal), doc);
  } catch (err) {
    await deps.snapshotter.remove(snapshotKey).catch(() => {});
    throw err;
  }
  const record: ContainerInput = {
    name,
    specHash: hash,
    spec,
    image: doc.imageRef,
    imageDigest: image.manifestDigest,
    snapshotter: deps.snapshotter.name,
    snapshotKey,
    generation,
  };
  if (opts.startFirst && (await deps.runtime.status(name).catch(() => undefined))?.state === 'running') {
    const check = resolveHealthcheck(doc.spec.healthcheck, config as { config?: { Healthcheck?: null } });
    return replaceStartFirst(deps, { doc, request, record, check, generation, retire: !!opts.retire }, signal);
  }
  if (opts.retire) await retireContainer(deps, name, generation, signal);
  await removeContainer(deps, name, signal);
  deps.metadata.putContainer(record);
  request.spec = await specOnNetworks(networkContext(deps, signal), doc);
  await deps.runtime.create(request, signal);
  await deps.runtime.start(name, { signal });
}

/**
 * What the checks before stop would refuse for `doc` on the image it has now, without preparing
 * anything (`berth plan` foresees it): the refusal in words, or undefined. Only a refusal is
 * foreseen (a bad command, user or bind source), not what may change by itself (a device that is
 * not plugged in yet), and only for an image already unpacked.
 */
export async function foreseeRefusal(deps: ReconcileDeps, doc: ContainerDoc, signal: AbortSignal): Promise<string | undefined> {
  const name = doc.metadata.name;
  const image = deps.metadata.getImage(doc.imageRef);
  const top = image?.chainIds?.at(-1);
  if (!image || !top || image.snapshotter !== deps.snapshotter.name) return undefined;
  try {
    const config = parseImageConfig(await deps.content.readBlob(image.configDigest, signal), `image ${image.name} config`);
    const mounts = await deps.snapshotter.peekMounts(top);
    await deps.runtime.validate({
      name,
      spec: doc.spec,
      imageRef: doc.imageRef,
      imageDigest: image.manifestDigest,
      imageConfig: config,
      snapshotKey: '',
      snapshotChain: [],
      mounts,
    });
    return undefined;
  } catch (err) {
    if (!isKind(err, 'InvalidArgument')) return undefined;
    return (err as Error).message.replace(`container ${name}: `, '');
  }
}

/**
 * Keep the current container `name` for a rollback: its record (with the image record it ran) is
 * stored durably first, then its task and bundle are deleted; its writable layer stays. If an older
 * container is already kept (an unconfirmed rollout is being replaced again), that one, the last
 * confirmed, stays kept and the current one is simply removed.
 */
export async function retireContainer(deps: ReconcileDeps, name: string, generation: number, signal: AbortSignal): Promise<void> {
  const record = deps.metadata.getContainer(name);
  if (!record || deps.metadata.getRetiredContainer(name)) return;
  const image = await imageItRan(deps, record, signal);
  deps.metadata.putRetiredContainer({ record, retiredBy: generation, ...(image ? { image } : {}) });
  try {
    await deps.runtime.delete(name, { signal });
  } catch (err) {
    if (!isKind(err, 'NotFound')) throw err;
  }
}

/** The image record as the container ran it: a pull for this rollout (a moved tag) may already point it elsewhere. */
async function imageItRan(deps: ReconcileDeps, record: ContainerRecord, signal: AbortSignal): Promise<ImageRecord | undefined> {
  const current = deps.metadata.getImage(record.image);
  if (current?.manifestDigest === record.imageDigest) return current;
  return imageRecordAt(deps, record.image, record.imageDigest, signal).catch(() => undefined);
}

interface StartFirstPlan {
  doc: ContainerDoc;
  request: CreateRequest;
  /** The metadata record of the new container. */
  record: ContainerInput;
  check?: Healthcheck;
  generation: number;
  retire: boolean;
}

/**
 * Start-first: the successor is created and started under an instance name of its own
 * (`<name>.<hex>`) while the current container keeps running. Only once it is ready does one
 * metadata transaction make it the container (and keep the old one for a rollback); then the
 * runtime stops the old one and hands the name over. A crash before that transaction leaves an
 * unwanted successor, a crash after it an unfinished handover: settleSuccessors() finishes either.
 */
async function replaceStartFirst(deps: ReconcileDeps, p: StartFirstPlan, signal: AbortSignal): Promise<void> {
  const name = p.doc.metadata.name;
  const instance = `${name}.${randomBytes(4).toString('hex')}`;
  try {
    await deps.runtime.create({ ...p.request, instance }, signal);
    await deps.runtime.start(instance, { signal });
    await waitSuccessorReady({ runtime: deps.runtime, name, instance, network: p.doc.spec.network, check: p.check, signal });
  } catch (err) {
    await deps.runtime.deleteSuccessor(instance).catch(() => {});
    await deps.snapshotter.remove(p.request.snapshotKey).catch(() => {});
    throw err;
  }
  const old = deps.metadata.getContainer(name);
  const keep = p.retire && old && !deps.metadata.getRetiredContainer(name) ? old : undefined;
  const image = keep && (await imageItRan(deps, keep, signal));
  deps.metadata.transaction(() => {
    if (keep) deps.metadata.putRetiredContainer({ record: keep, retiredBy: p.generation, ...(image ? { image } : {}) });
    deps.metadata.putContainer(p.record);
  });
  await handOver(deps, name, instance, signal);
}

type SuccessorParts = Pick<ReconcileDeps, 'runtime' | 'metadata' | 'snapshotter'>;

/** The runtime's handover, then the replaced container's writable layer goes unless a rollback keeps it. */
async function handOver(deps: SuccessorParts, name: string, instance: string, signal: AbortSignal): Promise<void> {
  const { replacedSnapshotKey } = await deps.runtime.promote(name, instance, { signal });
  if (!replacedSnapshotKey || replacedSnapshotKey === deps.metadata.getRetiredContainer(name)?.record.snapshotKey) return;
  await deps.snapshotter.remove(replacedSnapshotKey).catch((err) => {
    if (!isKind(err, 'NotFound')) throw err;
  });
}

/**
 * Start-up: finish what a start-first update left. A successor the metadata already names (its
 * writable layer is the record's) takes over; any other is deleted with its writable layer.
 * Returns what was done, for the log.
 */
export async function settleSuccessors(deps: SuccessorParts, signal: AbortSignal): Promise<string[]> {
  const done: string[] = [];
  for (const s of await deps.runtime.successors()) {
    if (deps.metadata.getContainer(s.name)?.snapshotKey === s.snapshotKey) {
      await handOver(deps, s.name, s.instance, signal);
      done.push(`${s.name}: the new container took over (start-first update interrupted after it was ready)`);
    } else {
      await deps.runtime.deleteSuccessor(s.instance, { signal });
      await deps.snapshotter.remove(s.snapshotKey).catch((err) => {
        if (!isKind(err, 'NotFound')) throw err;
      });
      done.push(`${s.name}: an unfinished start-first successor was removed; the old container stays`);
    }
  }
  return done;
}

/**
 * A rollout was confirmed: the containers it replaced go, writable layers included, at once (GC's
 * grace period for young snapshots would otherwise keep them until some later change). The record
 * goes first: a crash in between leaves an unreferenced snapshot, which GC collects.
 */
export async function discardRetired(deps: ReconcileDeps): Promise<number> {
  let discarded = 0;
  for (const r of deps.metadata.listRetiredContainers()) {
    deps.metadata.deleteRetiredContainer(r.record.name);
    if (deps.metadata.getContainer(r.record.name)?.snapshotKey === r.record.snapshotKey) continue; // restored, then kept again
    try {
      await deps.snapshotter.remove(r.record.snapshotKey);
      discarded++;
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
  }
  return discarded;
}

/** The image record a retired container ran, put back if a rollout (a moved tag) pointed it elsewhere. */
export function putBackImageRecord(metadata: Metadata, kept: RetiredContainer): void {
  if (!kept.image || metadata.getImage(kept.image.name)?.manifestDigest === kept.image.manifestDigest) return;
  const { createdAt: _c, updatedAt: _u, ...image } = kept.image;
  metadata.putImage(image);
}

/** An image record for `name` at the manifest `manifestDigest`, rebuilt from the content store. */
async function imageRecordAt(deps: ReconcileDeps, name: string, manifestDigest: string, signal: AbortSignal): Promise<ImageRecord> {
  const bytes = await deps.content.readBlob(manifestDigest, signal);
  const manifest = parseManifest(bytes, `image ${name} manifest ${manifestDigest}`);
  const config = parseImageConfig(await deps.content.readBlob(manifest.config.digest, signal), `image ${name} config`);
  const now = new Date();
  return {
    name,
    target: { mediaType: manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: bytes.length },
    manifestDigest,
    configDigest: manifest.config.digest,
    platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/'),
    size: bytes.length + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
    snapshotter: deps.snapshotter.name,
    chainIds: chainIds(config.rootfs.diff_ids),
    labels: {},
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * A rollback: remove the current container `name` (the rollout's, with its writable layer) and
 * start the retired one again on its own writable layer, from the image digest it ran (the image
 * record goes back to that digest if the rollout had moved it). Re-entrant after a crash at any
 * point: the retired record is dropped last.
 */
export async function restoreContainer(deps: ReconcileDeps, doc: ContainerDoc, generation: number, signal: AbortSignal): Promise<void> {
  const name = doc.metadata.name;
  const kept = deps.metadata.getRetiredContainer(name);
  if (!kept) throw notFound(`container ${name}: no retired container to restore`);
  await removeContainer(deps, name, signal);
  const rec = kept.record;
  putBackImageRecord(deps.metadata, kept);
  const manifest = parseManifest(await deps.content.readBlob(rec.imageDigest, signal), `image ${rec.image} manifest ${rec.imageDigest}`);
  const config = parseImageConfig(await deps.content.readBlob(manifest.config.digest, signal), `image ${rec.image} config`);
  const { createdAt: _c, updatedAt: _u, ...record } = rec;
  deps.metadata.putContainer({ ...record, generation });
  const mounts = await deps.snapshotter.mounts(rec.snapshotKey);
  await deps.runtime.create(
    {
      name,
      spec: await specOnNetworks(networkContext(deps, signal), doc),
      imageRef: doc.imageRef,
      imageDigest: rec.imageDigest,
      imageConfig: config,
      snapshotKey: rec.snapshotKey,
      snapshotChain: chainIds(config.rootfs.diff_ids).reverse(),
      mounts,
      specHash: rec.specHash,
    },
    signal,
  );
  await deps.runtime.start(name, { signal });
  deps.metadata.deleteRetiredContainer(name);
}

/** Stop (stop signal, grace, SIGKILL), delete the task and bundle, remove the writable layer and the record. Idempotent. */
export async function removeContainer(deps: ReconcileDeps, name: string, signal: AbortSignal): Promise<void> {
  const record = deps.metadata.getContainer(name);
  let snapshotKey = record?.snapshotKey;
  try {
    const deleted = await deps.runtime.delete(name, { signal });
    snapshotKey ??= deleted.snapshotKey;
  } catch (err) {
    if (!isKind(err, 'NotFound')) throw err;
  }
  await detachContainer(networkContext(deps, signal), name);
  // A retired container's writable layer is kept for a rollback, whoever asks.
  if (snapshotKey && snapshotKey !== deps.metadata.getRetiredContainer(name)?.record.snapshotKey) {
    try {
      await deps.snapshotter.remove(snapshotKey);
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
  }
  if (record) deps.metadata.deleteContainer(name);
}

/** A new task in the existing container (writable layer kept), recording the back-off streak. */
export async function restartContainer(deps: ReconcileDeps, name: string, streak: number, signal: AbortSignal): Promise<void> {
  await reattachContainer(networkContext(deps, signal), name);
  await deps.runtime.start(name, { restart: true, backoffStreak: streak, signal });
}
