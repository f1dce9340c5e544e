/**
 * A manifests path inside a fetched git revision (`<root>/sources/current/<path>`, see
 * src/source/revisions.ts) is read from the revision the `current` link names when a load starts:
 * every file of one load comes from one commit even if the link moves meanwhile, and the commit is
 * the load's revision. A revision directory holds a marker (hidden, so never read as a manifest)
 * written before the directory got its name.
 */
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';

/** The marker file at the top of a revision directory. */
export const REVISION_MARKER = '.berth-revision';

export interface RevisionMarker {
  commit: string;
  /** Who signed it (the allowed-signers principal or the GPG uid); absent when unverified. */
  signer?: string;
  verifiedAt: string;
}

const IN_REVISION = /^(.*\/sources\/([0-9a-f]{40}|[0-9a-f]{64}))(?:\/|$)/;

/**
 * `path` with links resolved and the commit when it lies in a revision directory; else `path`
 * unchanged and no revision.
 */
export async function pinManifestsPath(path: string): Promise<{ path: string; revision?: string }> {
  const real = await realpath(path).catch(() => undefined);
  const m = real === undefined ? null : IN_REVISION.exec(real);
  if (!real || !m) return { path };
  const marker = await readRevisionMarker(m[1]!);
  return marker?.commit === m[2] ? { path: real, revision: marker.commit } : { path };
}

export async function readRevisionMarker(dir: string): Promise<RevisionMarker | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, REVISION_MARKER), 'utf8')) as RevisionMarker;
    return typeof m.commit === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}
