/**
 * Anonymous volumes: each path the image declares in `Volumes` (Dockerfile VOLUME) that no
 * manifest mount covers gets a directory of its own, `<container dir>/volumes/<hash of the path>`,
 * bind-mounted there (writable even on a read-only rootfs, outside the overlay). As in Docker it
 * starts with what the image holds at that path, survives a restart (the container directory stays)
 * and not a recreate (a new container directory). A path that goes through a symlink in the image
 * starts empty: the copy never follows a link, which could point anywhere on the host.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MountSpec } from '../manifest/types.ts';

const run = promisify(execFile);

export interface AnonymousVolume {
  /** The path in the container. */
  target: string;
  /** The directory on the host. */
  source: string;
}

/** The image's volumes not covered by a mount of the same path, in the order a parent comes before its children. */
export function anonymousVolumes(
  image: { config?: { Volumes?: Record<string, object> } } | undefined,
  mounts: MountSpec[],
  containerDir: string,
): AnonymousVolume[] {
  const taken = new Set(mounts.map((m) => path.posix.normalize(m.target)));
  const targets = Object.keys(image?.config?.Volumes ?? {})
    .map((t) => path.posix.normalize(t))
    .filter((t) => path.posix.isAbsolute(t) && t !== '/' && !taken.has(t));
  return [...new Set(targets)].sort().map((target) => ({
    target,
    source: path.join(containerDir, 'volumes', createHash('sha256').update(target).digest('hex').slice(0, 16)),
  }));
}

/** `<rootfs>/<target>` when it is a real directory reached without a symlink; else undefined. */
async function imageDirectory(rootfs: string, target: string): Promise<string | undefined> {
  let at = rootfs;
  for (const part of target.split('/').filter(Boolean)) {
    at = path.join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st || st.isSymbolicLink() || !st.isDirectory()) return undefined;
  }
  return at;
}

/**
 * Make the volumes that do not exist yet, each filled with the image's content at its path (copied
 * into a temporary directory, then renamed: a crash never leaves a half-filled volume). Existing
 * ones are kept as they are: that is what makes them survive a restart.
 */
export async function prepareAnonymousVolumes(volumes: AnonymousVolume[], rootfs: string, signal?: AbortSignal): Promise<void> {
  for (const v of volumes) {
    if (
      await lstat(v.source).then(
        () => true,
        () => false,
      )
    )
      continue;
    const tmp = `${v.source}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const from = await imageDirectory(rootfs, v.target);
    // -a: owners, modes, times and links as they are; a link inside is copied as a link, never followed.
    if (from) await run('cp', ['-a', '--', `${from}/.`, tmp], { signal });
    await rename(tmp, v.source);
  }
}
