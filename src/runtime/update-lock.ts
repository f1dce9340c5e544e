/**
 * Update locks: an app holds off its own restart for an update by taking flock(2) on the file berth
 * mounts into it (`[updates] lock_path`, default /run/berth/lock), e.g. `flock /run/berth/lock
 * flash-firmware`. The host side is `<root>/locks/<name>`, an empty regular file. Nothing about a
 * hold is kept by berth: the kernel drops a flock when its last holder dies, so a crashed app
 * cannot hold it, and a reboot clears every lock.
 *
 * berth never takes the lock to find out whether it is held (that could make an app's own
 * `flock --nonblock` fail): it reads /proc/locks, where every flock is listed with its file's
 * device and inode. Only when a lock on an inode with the lock file's number is listed is the
 * kernel asked directly (util-linux `flock --nonblock`, which cannot take a lock someone holds), so
 * file systems whose stat device differs from the one /proc/locks prints (btrfs subvolumes) are
 * judged right too, and the common case (no lock) costs one read and no process.
 *
 * When a hold was first seen is kept in `<root>/locks/.held-since/<name>` with the boot id, so
 * `max_lock_hold` counts across restarts of berth but never across a reboot.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, failedPrecondition } from '../errors.ts';
import { ifExists, writeFileAtomic } from '../durable-file.ts';
import { readJson } from './state.ts';

/** The mode of the host file: anyone in the container can open it to lock it; only root can write. */
const LOCK_FILE_MODE = 0o644;
/** flock(1)'s exit code on a conflict, chosen so it cannot be mistaken for its other failures. */
const FLOCK_CONFLICT = 75;

export interface UpdateLockHold {
  held: boolean;
  /** When berth first saw the current hold. */
  since?: Date;
  /** How long the lock has been held as of the check (0 when not held). */
  heldForMs: number;
}

interface HoldRecord {
  bootId: string;
  sinceMs: number;
}

export function updateLocksDir(root: string): string {
  return path.join(root, 'locks');
}

/** The host side of a container's update lock. Container names never start with `.`. */
export function updateLockFile(root: string, name: string): string {
  return path.join(updateLocksDir(root), name);
}

function holdRecordFile(root: string, name: string): string {
  return path.join(updateLocksDir(root), '.held-since', name);
}

/**
 * Create the lock file (mode 0644) if it is not there; an existing one is kept (an app may hold
 * it). Anything else at that path (a directory, a symlink) is replaced. Returns the path.
 */
export async function ensureUpdateLock(root: string, name: string): Promise<string> {
  const file = updateLockFile(root, name);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  if (await createRegularFile(file)) return file;
  await rm(file, { recursive: true, force: true });
  if (await createRegularFile(file)) return file;
  throw failedPrecondition(`${file}: still not a regular file after replacing it`);
}

/** Create `file` or keep it if it is a regular file, mode 0644; false when something else is there. */
async function createRegularFile(file: string): Promise<boolean> {
  let fh;
  try {
    // O_NOFOLLOW: never create or chmod a symlink's target; O_NONBLOCK: a FIFO must not hang the open.
    fh = await open(file, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, LOCK_FILE_MODE);
  } catch (err: any) {
    if (err?.code === 'ELOOP' || err?.code === 'EISDIR') return false;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return false;
    if ((st.mode & 0o7777) !== LOCK_FILE_MODE) await fh.chmod(LOCK_FILE_MODE); // the umask may have narrowed it
    return true;
  } finally {
    await fh.close();
  }
}

/** Remove a container's lock file and what berth remembers of its hold. */
export async function removeUpdateLock(root: string, name: string): Promise<void> {
  await rm(updateLockFile(root, name), { force: true });
  await rm(holdRecordFile(root, name), { force: true });
}

/**
 * Whether the app holds its update lock, and since when (as first seen by berth). A missing lock
 * file is not held. Takes no lock itself.
 */
export async function updateLockHeld(root: string, name: string, signal?: AbortSignal, nowMs: number = Date.now()): Promise<UpdateLockHold> {
  const file = updateLockFile(root, name);
  const held = await isFlocked(file, signal);
  const recordFile = holdRecordFile(root, name);
  if (!held) {
    await rm(recordFile, { force: true });
    return { held: false, heldForMs: 0 };
  }
  const bootId = await currentBootId();
  const record = await readJson<HoldRecord>(recordFile).catch(() => undefined);
  let sinceMs = record?.bootId === bootId && typeof record.sinceMs === 'number' ? record.sinceMs : undefined;
  if (sinceMs === undefined) {
    sinceMs = nowMs;
    // Losing this in a power cut is harmless: the reboot drops the hold too.
    await writeFileAtomic(recordFile, JSON.stringify({ bootId, sinceMs } satisfies HoldRecord), { syncDir: false });
  }
  return { held: true, since: new Date(sinceMs), heldForMs: Math.max(0, nowMs - sinceMs) };
}

/** Whether some process holds a flock(2) on `file`; false when the file does not exist. */
export async function isFlocked(file: string, signal?: AbortSignal): Promise<boolean> {
  const st = await ifExists(stat(file, { bigint: true }));
  if (!st) return false;
  const listed = flocksOnInode(await readFile('/proc/locks', { encoding: 'utf8', signal }), st.ino);
  if (listed.length === 0) return false;
  const [major, minor] = deviceNumbers(st.dev);
  const sameDevice = listed.some((l) => l.major === major && l.minor === minor);
  const asked = await askFlock(file, signal);
  // Without util-linux flock, /proc/locks alone decides.
  return asked === 'missing' ? sameDevice : asked;
}

interface ListedFlock {
  major: number;
  minor: number;
}

/**
 * The flock(2) holders (not waiters, shown with `->`) listed in /proc/locks text on an inode with
 * this number, on any device. A line: `7: FLOCK  ADVISORY  WRITE 12270 fe:00:15089665 0 EOF`.
 */
export function flocksOnInode(procLocks: string, ino: bigint): ListedFlock[] {
  const out: ListedFlock[] = [];
  for (const line of procLocks.split('\n')) {
    const m = /^\d+:\s+(->\s+)?FLOCK\s+\S+\s+\S+\s+-?\d+\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m || m[1] || BigInt(m[4]!) !== ino) continue;
    out.push({ major: parseInt(m[2]!, 16), minor: parseInt(m[3]!, 16) });
  }
  return out;
}

/** glibc's dev_t encoding (gnu_dev_major/minor), which Node's stat returns. */
function deviceNumbers(dev: bigint): [number, number] {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

/**
 * Ask the kernel: try an exclusive flock without waiting. It conflicts with any holder (exit 75);
 * when nobody holds it, flock(1) takes it and lets go at once. `missing` when flock(1) is not
 * installed.
 */
function askFlock(file: string, signal?: AbortSignal): Promise<boolean | 'missing'> {
  return new Promise((resolve, reject) => {
    execFile('flock', ['--nonblock', '--conflict-exit-code', String(FLOCK_CONFLICT), file, 'true'], { signal }, (err, _out, stderr) => {
      if (!err) return resolve(false);
      const code = (err as { code?: unknown }).code;
      if (code === FLOCK_CONFLICT) return resolve(true);
      if (code === 'ENOENT') return resolve('missing');
      if (signal?.aborted) return reject(signal.reason);
      reject(new BerthError('Internal', `flock ${file}: ${String(stderr).trim() || err.message}`, { cause: err }));
    });
  });
}

async function currentBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}
