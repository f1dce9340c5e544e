/**
 * Verified revisions on disk, under `<root>/sources/`:
 *
 *   <commit>/         one checked-out revision: the tree, plus a marker naming the commit and signer
 *   current           a symlink to the applied revision's directory name
 *   .tmp-<commit>-*   a checkout in progress (never read; removed by the next sync)
 *
 * A revision is extracted into a temp directory, its marker written, the filesystem synced, and
 * only then renamed to `<commit>`; `current` is switched by writing `current.tmp` and renaming it
 * over `current`, then syncing the directory. So a kill or a power cut at any point leaves
 * `current` naming a whole revision: the old one or the new one.
 */
import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readlink, realpath, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { Writable } from 'node:stream';
import { fsyncDir } from '../durable-file.ts';
import { BerthError, corrupt, failedPrecondition } from '../errors.ts';
import { readRevisionMarker, REVISION_MARKER, type RevisionMarker } from '../manifest/pinned-revision.ts';

const exec = promisify(execFile);
export const CURRENT = 'current';
const COMMIT_DIR = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
const TMP_PREFIX = '.tmp-';

/** Where the manifests of the current revision are read: through the `current` link, so it follows every switch. */
export function sourceManifestsPath(root: string, path: string): string {
  return join(root, 'sources', CURRENT, path);
}

/** The applied revision: the marker of the directory `current` names; undefined if there is none yet. */
export async function currentRevision(sources: string): Promise<RevisionMarker | undefined> {
  const target = await readlink(join(sources, CURRENT)).catch(() => undefined);
  if (!target || !COMMIT_DIR.test(target)) return undefined;
  const marker = await readRevisionMarker(join(sources, target));
  return marker?.commit === target ? marker : undefined;
}

/**
 * Check out `commit` into `<sources>/<commit>/` unless it is already there. `archive` writes the
 * commit's tree as a tar stream (git archive) into the stream it is given.
 */
export async function materialize(
  sources: string,
  marker: RevisionMarker,
  archive: (into: Writable) => Promise<void>,
  signal?: AbortSignal,
  manifests = '',
): Promise<string> {
  const final = join(sources, marker.commit);
  if ((await readRevisionMarker(final))?.commit === marker.commit) return final;
  await rm(final, { recursive: true, force: true }); // a directory without its marker is not ours to trust
  const tmp = await mkdtemp(join(sources, `${TMP_PREFIX}${marker.commit}-`));
  try {
    const tar = spawn('tar', ['-x', '-C', tmp, '--no-same-owner', '--no-same-permissions', '--delay-directory-restore'], {
      stdio: ['pipe', 'ignore', 'pipe'],
      signal,
    });
    let tarErr = '';
    tar.stderr.on('data', (b) => (tarErr += String(b)));
    const tarDone = new Promise<number>((resolve, reject) => {
      tar.on('error', reject);
      tar.on('close', (code) => resolve(code ?? 1));
    });
    await archive(tar.stdin);
    const code = await tarDone;
    if (code !== 0) throw new BerthError('Internal', `checkout of ${marker.commit}: tar exited ${code}: ${tarErr.trim()}`);
    await confineLinks(tmp, manifests);
    await writeFile(join(tmp, REVISION_MARKER), `${JSON.stringify(marker)}\n`, { mode: 0o600 });
    // Everything written must be on disk before the directory gets the name that makes it usable.
    await exec('sync', ['-f', tmp], { signal });
    await rename(tmp, final);
    await fsyncDir(sources);
    return final;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/**
 * The manifests directory of a checkout, and every link under it, must resolve inside the checkout:
 * a link out of it would be read from outside the verified commit (and from outside its pinning to
 * one revision, src/manifest/pinned-revision.ts).
 */
async function confineLinks(dir: string, manifests: string): Promise<void> {
  const top = await realpath(dir);
  const inside = async (p: string) => {
    const real = await realpath(p).catch(() => undefined);
    return real !== undefined && (real === top || real.startsWith(`${top}/`));
  };
  const base = join(dir, manifests);
  if (!(await lstat(base).catch(() => undefined))) return; // no such directory: the loader says so
  if (!(await inside(base))) throw failedPrecondition(`checkout: ${manifests} leads out of the revision`);
  for (const e of await readdir(base, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    if (e.isSymbolicLink() && !(await inside(p))) throw failedPrecondition(`checkout: ${relative(dir, p)} links out of the revision (to ${await readlink(p)})`);
  }
}

/** Make `<sources>/<commit>` current, atomically and durably. */
export async function makeCurrent(sources: string, commit: string): Promise<void> {
  const st = await stat(join(sources, commit)).catch(() => undefined);
  if (!st?.isDirectory()) throw corrupt(`sources: ${join(sources, commit)} is missing; cannot make it current`);
  const tmp = join(sources, `${CURRENT}.tmp`);
  await unlink(tmp).catch(() => {});
  await symlink(commit, tmp);
  await rename(tmp, join(sources, CURRENT));
  await fsyncDir(sources);
}

/**
 * Remove checkouts left half-made, and revisions beyond the newest `keep` (the current one is
 * always kept). Called under the sources lock, so no checkout is in progress.
 */
export async function prune(sources: string, keep: number): Promise<string[]> {
  const current = (await currentRevision(sources))?.commit;
  const removed: string[] = [];
  const revisions: Array<{ name: string; time: number }> = [];
  for (const name of await readdir(sources)) {
    if (name.startsWith(TMP_PREFIX) || name === `${CURRENT}.tmp`) {
      await rm(join(sources, name), { recursive: true, force: true });
      removed.push(name);
    } else if (COMMIT_DIR.test(name) && name !== current) {
      const marker = await readRevisionMarker(join(sources, name));
      revisions.push({ name, time: marker ? Date.parse(marker.verifiedAt) || 0 : 0 });
    }
  }
  revisions.sort((a, b) => b.time - a.time);
  for (const r of revisions.slice(Math.max(0, keep - (current ? 1 : 0)))) {
    await rm(join(sources, r.name), { recursive: true, force: true });
    removed.push(r.name);
  }
  return removed;
}

/** `<sources>` made owner-only (it holds what the device runs). */
export async function ensureSourcesDir(sources: string): Promise<void> {
  await mkdir(sources, { recursive: true, mode: 0o700 });
  const st = await lstat(sources);
  if (!st.isDirectory()) throw corrupt(`sources: ${sources} is not a directory`);
}
