/**
 * Durable files: the one way berth writes a small file that must survive a power cut whole, and
 * the one way it asks whether a path is missing.
 *
 * A crash-safe write is: write a temp file beside the target, fsync it, rename it over the target,
 * fsync the directory (the rename itself lives in the directory). A reader then sees the old file
 * or the new one, never a mix, and after the directory fsync the new one survives a power cut.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface AtomicWriteOptions {
  /** Mode of a new file (default 0644): 0600 for what holds env values or secrets. */
  mode?: number;
  /**
   * fsync the directory after the rename (default true). Skip it when a later atomic write in the
   * same directory will (that fsync persists every earlier rename there too), or when losing the
   * rename in a power cut is harmless.
   */
  syncDir?: boolean;
  /**
   * fsync the file before the rename (default true). False only for advisory data whose loss is
   * harmless and whose fsync could stall behind a busy journal (an ingest's `updatedat`); the
   * directory is then not synced either.
   */
  syncFile?: boolean;
}

/** Replace `file` with `data` crash-safely (temp, fsync, rename, fsync dir); creates missing parents. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  // Unique per writer: two processes writing the same file must not share (and truncate) one temp.
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const syncFile = opts.syncFile ?? true;
  try {
    const fh = await open(tmp, 'w', opts.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      if (syncFile) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (syncFile && opts.syncDir !== false) await fsyncDir(dir);
}

/** fsync a directory: makes the creations, renames and removals of entries in it durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** `fsyncDir` for synchronous code (the snapshotters' SQLite transactions cannot await). */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Whether a filesystem error says nothing is at the path: ENOENT, or ENOTDIR (a file where a parent directory should be). */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The result of a filesystem call, or undefined when its path is missing; other errors pass.
 * @example const text = await ifExists(readFile(path, 'utf8')); // string | undefined
 */
export async function ifExists<T>(op: Promise<T>): Promise<T | undefined> {
  try {
    return await op;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}
