/**
 * Image records are GC roots (as in containerd), so an image no manifest wants any more would keep
 * its blobs and snapshots forever on a device that is never cleaned by hand. Before a collection the
 * reconciler forgets the records of images that neither the desired state being applied nor the
 * last applied generation (kept for a rollback) asks for, and that no container runs.
 */
import { canonicalJson } from '../manifest/spec-hash.ts';
import type { DesiredState } from '../manifest/types.ts';
import type { ReconcileDeps } from './deps.ts';
import { desiredImages } from './plan.ts';

/** Delete unwanted image records; returns their names. */
export function pruneImageRecords(deps: Pick<ReconcileDeps, 'metadata' | 'log'>, desired: DesiredState): string[] {
  const { metadata } = deps;
  return metadata.transaction(() => {
    const keep = new Set(desiredImages(desired).map((d) => d.ref));
    // The generation before this one: the last applied, unless that is this very desired state
    // (a later turn of the same generation), then the one applied before it.
    const current = metadata.currentGeneration();
    const same = current !== undefined && canonicalJson(current.desired) === canonicalJson(JSON.parse(JSON.stringify(desired)));
    const previous = (same ? metadata.previousGeneration() : current)?.desired as DesiredState | undefined;
    if (previous?.containers && previous.images) for (const d of desiredImages(previous)) keep.add(d.ref);
    for (const c of metadata.listContainers()) keep.add(c.image);
    const pruned: string[] = [];
    for (const img of metadata.listImages()) {
      if (keep.has(img.name)) continue;
      metadata.deleteImage(img.name);
      pruned.push(img.name);
    }
    if (pruned.length) deps.log.info({ images: pruned }, 'forgot images no generation kept asks for');
    return pruned;
  });
}
