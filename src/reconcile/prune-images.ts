/**
 * Image records are GC roots (as in containerd), so an image the manifests stopped asking for
 * would keep its blobs and snapshots forever on a device nobody cleans by hand. An image is
 * RETIRED when an older generation asked for it, but neither the desired state being applied nor
 * the generation before it (kept for a quick rollback) does, and no container runs it. The plan
 * collects garbage when there are retired images, and the gc step forgets their records first.
 *
 * Images no generation ever asked for (pulled by hand with `berth pull`, or provisioned through
 * the import directory for manifests still to come) are never retired: they are the user's.
 */
import { canonicalJson } from '../manifest/spec-hash.ts';
import type { DesiredState } from '../manifest/types.ts';
import type { Metadata } from '../metadata/metadata.ts';
import type { ReconcileDeps } from './deps.ts';
import { desiredImages } from './plan.ts';

/**
 * How far back "an older generation asked for it" looks. An image retires (and the next turn
 * collects it) two generations after the last one that wanted it, so a short window is enough,
 * and it bounds what each turn parses (a generation holds the whole desired state).
 */
const GENERATIONS_LOOKED_AT = 10;

function imagesOf(desired: unknown): string[] {
  const d = desired as Partial<DesiredState> | undefined;
  return d?.containers && d.images ? desiredImages(d as DesiredState).map((i) => i.ref) : [];
}

/** The names of retired image records (see the header). Reads only. */
export function retiredImages(metadata: Metadata, desired: DesiredState): string[] {
  const keep = new Set(imagesOf(desired));
  // The generation before this one: the last applied, unless that is this very desired state
  // (a later turn of the same generation), then the one applied before it.
  const current = metadata.currentGeneration();
  // (Compared without the registry's pins: observe sees the manifests before they are pinned.)
  const unpinned = (d: unknown) => canonicalJson({ ...(JSON.parse(JSON.stringify(d)) as object), imagePins: undefined });
  const same = current !== undefined && unpinned(current.desired) === unpinned(desired);
  for (const ref of imagesOf((same ? metadata.previousGeneration() : current)?.desired)) keep.add(ref);
  for (const c of metadata.listContainers()) keep.add(c.image);
  const candidates = metadata
    .listImages()
    .map((i) => i.name)
    .filter((name) => !keep.has(name));
  if (candidates.length === 0) return []; // the usual case: older generations need not be read
  const once = new Set(metadata.listGenerations(GENERATIONS_LOOKED_AT).flatMap((g) => imagesOf(g.desired)));
  return candidates.filter((name) => once.has(name));
}

/** Forget retired image records (in one transaction); returns their names. */
export function pruneImageRecords(deps: Pick<ReconcileDeps, 'metadata' | 'log'>, desired: DesiredState): string[] {
  const { metadata } = deps;
  const pruned = metadata.transaction(() => {
    const names = retiredImages(metadata, desired);
    for (const name of names) metadata.deleteImage(name);
    return names;
  });
  if (pruned.length) deps.log.info({ images: pruned }, 'forgot images no kept generation asks for');
  return pruned;
}
