/**
 * Check before a pull that the filesystem holding `path` has room for `neededBytes` plus a reserve
 * (so the device never fills its disk: SQLite, logs and the OS need room too). If it would not fit,
 * collect garbage and look again; if it still would not fit, fail with a ResourceExhausted error
 * that names every number, before a single byte is written.
 */
import { statfs } from 'node:fs/promises';
import { resourceExhausted } from '../errors.ts';
import { formatBytes } from '../format-bytes.ts';

export interface FreeSpace {
  /** Bytes available to an unprivileged writer (statfs `bavail * bsize`). */
  availableBytes: number;
  totalBytes: number;
}

export async function freeSpace(path: string): Promise<FreeSpace> {
  const s = await statfs(path);
  return { availableBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}

export interface EnsureFreeSpaceResult {
  availableBytes: number;
  /** Whether garbage had to be collected to make room. */
  collected: boolean;
  /** What `collect` returned, if it ran. */
  report?: unknown;
}

/**
 * Resolve if `neededBytes + reserveBytes` fit on `path`'s filesystem, collecting garbage first if
 * needed (`collect` is called at most once). ResourceExhausted otherwise.
 */
export async function ensureFreeSpace<R>(
  path: string,
  neededBytes: number,
  reserveBytes: number,
  collect: () => Promise<R>,
): Promise<EnsureFreeSpaceResult & { report?: R }> {
  const want = neededBytes + reserveBytes;
  const before = await freeSpace(path);
  if (before.availableBytes >= want) return { availableBytes: before.availableBytes, collected: false };
  const report = await collect();
  const after = await freeSpace(path);
  if (after.availableBytes >= want) return { availableBytes: after.availableBytes, collected: true, report };
  throw resourceExhausted(
    `not enough disk space on ${path}: need ${formatBytes(neededBytes)} + reserve ${formatBytes(reserveBytes)} = ${formatBytes(want)}, ` +
      `${formatBytes(after.availableBytes)} available after garbage collection (was ${formatBytes(before.availableBytes)}) ` +
      `of ${formatBytes(after.totalBytes)}; free ${formatBytes(want - after.availableBytes)} more or lower gc.reserve`,
  );
}
