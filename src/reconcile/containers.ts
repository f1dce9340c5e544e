/**
 * Making and unmaking containers from plan steps: the writable snapshot on top of the image, the
 * runtime's bundle and task, and the metadata record that ties them together.
 *
 * Order matters for crash safety: the record is written before anything is made (so GC keeps the
 * new writable layer, and a crash leaves a record whose container is `absent`, which the next turn
 * makes again), and removed after everything is unmade.
 */
import { randomBytes } from 'node:crypto';
import { failedPrecondition, isKind } from '../errors.ts';
import { specHash, type NormalisedContainerSpec } from '../manifest/spec-hash.ts';
import type { ContainerDoc } from '../manifest/types.ts';
import { parseImageConfig } from '../oci/types.ts';
import type { ReconcileDeps } from './deps.ts';

export async function createContainer(
  deps: ReconcileDeps,
  doc: ContainerDoc,
  spec: NormalisedContainerSpec,
  generation: number,
  signal: AbortSignal,
): Promise<void> {
  const name = doc.metadata.name;
  const image = deps.metadata.getImage(doc.imageRef);
  if (!image?.chainIds?.length || image.snapshotter !== deps.snapshotter.name) {
    throw failedPrecondition(`container ${name}: image ${doc.imageRef} is not unpacked yet`);
  }
  await removeContainer(deps, name, signal);
  const config = parseImageConfig(await deps.content.readBlob(image.configDigest, signal), `image ${image.name} config`);
  const snapshotKey = `container/${name}/${randomBytes(6).toString('hex')}`;
  const hash = specHash(spec, image.manifestDigest);
  deps.metadata.putContainer({
    name,
    specHash: hash,
    spec,
    image: doc.imageRef,
    imageDigest: image.manifestDigest,
    snapshotter: deps.snapshotter.name,
    snapshotKey,
    generation,
  });
  const mounts = await deps.snapshotter.prepare(snapshotKey, image.chainIds.at(-1), { labels: { 'berth.dev/container': name }, signal });
  await deps.runtime.create(
    {
      name,
      spec: doc.spec,
      imageRef: doc.imageRef,
      imageDigest: image.manifestDigest,
      imageConfig: config,
      snapshotKey,
      snapshotChain: [...image.chainIds].reverse(),
      mounts,
      specHash: hash,
    },
    signal,
  );
  await deps.runtime.start(name, { signal });
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
  if (snapshotKey) {
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
  await deps.runtime.start(name, { restart: true, signal });
  await deps.runtime.updateRecord(name, (r) => {
    r.backoffStreak = streak;
  });
}
