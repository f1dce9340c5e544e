/**
 * Re-making an image's layer snapshots after a directory was removed behind berth's back. The
 * snapshotter's record still names the snapshot, so an unpack would skip it as done: the broken
 * snapshot and everything built on it (the layers above, other images' layers sharing the prefix,
 * containers' writable layers) must go first, deepest first. A container whose writable layer goes
 * keeps its berth record, so the plan sees it `absent` and creates it again.
 */
import { isKind } from '../errors.ts';
import type { ImageRecord } from '../metadata/metadata.ts';
import type { SnapshotInfo } from '../snapshots/snapshotter.ts';
import { ABSENT_REASON_LABEL } from './types.ts';
import type { ReconcileDeps } from './deps.ts';

/**
 * Remove the image's committed layer snapshots whose directory is gone, and their dependents.
 * Returns the snapshot keys removed (empty when nothing was broken).
 */
export async function removeBrokenSnapshots(deps: ReconcileDeps, record: ImageRecord, signal: AbortSignal): Promise<string[]> {
  const { snapshotter, metadata, runtime, log } = deps;
  if (!record.chainIds?.length || record.snapshotter !== snapshotter.name) return [];
  const all: SnapshotInfo[] = [];
  for await (const info of snapshotter.walk()) all.push(info);
  const byKey = new Map(all.map((s) => [s.key, s] as const));
  const broken = new Set<string>();
  for (const chainId of record.chainIds) {
    const info = byKey.get(chainId);
    if (info && !(await snapshotter.onDisk(info))) broken.add(chainId);
  }
  if (broken.size === 0) return [];

  // Everything whose ancestry reaches a broken snapshot.
  const doomed = new Set<string>(broken);
  const reaches = (s: SnapshotInfo): boolean => {
    for (let p = s.parent; p !== undefined; p = byKey.get(p)?.parent) if (broken.has(p)) return true;
    return false;
  };
  for (const s of all) if (reaches(s)) doomed.add(s.key);

  // Containers on top: delete their task and bundle (unmounting the rootfs), keep the record.
  for (const c of metadata.listContainers()) {
    if (!doomed.has(c.snapshotKey)) continue;
    signal.throwIfAborted();
    try {
      await runtime.delete(c.name, { signal });
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
    const { createdAt: _c, updatedAt: _u, ...kept } = c;
    metadata.putContainer({ ...kept, labels: { ...c.labels, [ABSENT_REASON_LABEL]: `a layer of image ${record.name} was lost and unpacked again` } });
    log.warn({ container: c.name, image: record.name }, 'container removed: a layer of its image was removed from disk; it will be created again');
  }

  const depth = (key: string): number => {
    let d = 0;
    for (let p = byKey.get(key)?.parent; p !== undefined; p = byKey.get(p)?.parent) d++;
    return d;
  };
  const order = [...doomed].sort((a, b) => depth(b) - depth(a));
  for (const key of order) {
    signal.throwIfAborted();
    try {
      await snapshotter.remove(key);
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
  }
  log.warn({ image: record.name, broken: [...broken], removed: order.length }, 'removed layer snapshots whose directory was gone, to unpack them again');
  return order;
}
