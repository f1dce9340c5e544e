/**
 * Unmount everything mounted at or under a directory, deepest first. containerd leaves its
 * snapshot mounts behind when it stops, and a failed bench or test can leave views mounted;
 * `rm -rf` of such a directory would reach into the mounted trees.
 */
import { readFile } from 'node:fs/promises';
import { unmount } from '../../src/snapshots/mount.ts';

/** Mount points at or under `dir` (from /proc/self/mounts), deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const table = await readFile('/proc/self/mounts', 'utf8');
  return table
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort()
    .reverse();
}

/** Unmount every mount at or under `dir`; a mount that will not go is reported, not skipped. */
export async function unmountUnder(dir: string, signal?: AbortSignal): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmount(m, { signal });
}
