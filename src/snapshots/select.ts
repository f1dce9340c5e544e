/**
 * Choosing a snapshotter: `overlayfs`, `native`, or `auto` = overlayfs when an actual overlay
 * mount works here (a kernel without it, or a container without privileges, fails the probe),
 * else native. Each lives in its own dir under the berth root, in containerd's layout. `auto`
 * keeps the snapshotter a root already has: its images are there, and every command need not
 * mount and unmount a probe (two processes, ~50 ms of each `berth pull`).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { invalidArgument } from '../errors.ts';
import { pathExists } from '../path-exists.ts';
import { NativeSnapshotter } from './native/native.ts';
import { OverlaySnapshotter } from './overlay/overlay.ts';
import type { Snapshotter } from './snapshotter.ts';

const run = promisify(execFile);

export type SnapshotterName = 'overlayfs' | 'native';

export function snapshotterRoot(root: string, name: SnapshotterName): string {
  return `${root}/io.containerd.snapshotter.v1.${name}`;
}

/** Whether an overlay mount works on the filesystem holding `dir` (tries one, then removes it). */
export async function overlaySupported(dir: string, signal?: AbortSignal): Promise<boolean> {
  // Often the berth root itself, probed before anything else made it: owner-only, as the root must be.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const t = await mkdtemp(`${dir}/overlay-probe-`);
  try {
    for (const d of ['l1', 'l2', 'u', 'w', 'm']) await mkdir(`${t}/${d}`);
    await run('mount', ['-t', 'overlay', '-o', `lowerdir=${t}/l1:${t}/l2,upperdir=${t}/u,workdir=${t}/w`, 'overlay', `${t}/m`], { signal });
    await run('umount', [`${t}/m`]).catch(() => run('umount', ['-l', `${t}/m`]));
    return true;
  } catch {
    return false;
  } finally {
    await rm(t, { recursive: true, force: true }).catch(() => {});
  }
}

/** Resolve `auto` to the snapshotter this machine supports. */
export async function resolveSnapshotterName(root: string, name: string, signal?: AbortSignal): Promise<SnapshotterName> {
  if (name === 'overlayfs' || name === 'native') return name;
  if (name !== 'auto') throw invalidArgument(`unknown snapshotter ${JSON.stringify(name)} (want overlayfs, native or auto)`);
  for (const existing of ['overlayfs', 'native'] as const) if (await pathExists(snapshotterRoot(root, existing))) return existing;
  return (await overlaySupported(root, signal)) ? 'overlayfs' : 'native';
}

/**
 * Open (creating if needed) the snapshotter `name` under the berth `root` and run its start-up
 * recovery. The caller closes it.
 */
export async function openSnapshotter(
  root: string,
  name: 'overlayfs' | 'native' | 'auto',
  opts: { signal?: AbortSignal; recover?: boolean } = {},
): Promise<Snapshotter> {
  const n = await resolveSnapshotterName(root, name, opts.signal);
  const dir = snapshotterRoot(root, n);
  const s = n === 'overlayfs' ? new OverlaySnapshotter(dir) : new NativeSnapshotter(dir);
  if (opts.recover !== false) await s.recover(opts.signal);
  return s;
}
