/**
 * A lock per ingest ref that works across processes (node has no flock): a lock file created with
 * O_EXCL holding the owner's pid and that process's start time (so a recycled pid is not mistaken
 * for the owner). A lock whose owner is gone is stale and taken over. Takeover itself is guarded by
 * a second O_EXCL file so two processes cannot both remove a stale lock and both win.
 */
import { open, readFile, unlink, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, unavailable } from '../errors.ts';

export interface LockOwner {
  pid: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22), or 0 if unknown. */
  start: number;
}

/** The start time of a process, or undefined if it does not exist. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    try {
      process.kill(pid, 0);
      return 0;
    } catch (err: any) {
      return err?.code === 'EPERM' ? 0 : undefined;
    }
  }
}

/** True if the process that wrote `owner` still runs. */
export function ownerAlive(owner: LockOwner): boolean {
  const start = processStart(owner.pid);
  if (start === undefined) return false;
  return owner.start === 0 || start === 0 || start === owner.start;
}

const SELF: LockOwner = { pid: process.pid, start: processStart(process.pid) ?? 0 };

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const [pid, start] = (await readFile(path, 'utf8')).trim().split(' ').map(Number);
    if (!Number.isInteger(pid)) return { pid: -1, start: 0 };
    return { pid: pid!, start: start ?? 0 };
  } catch (err: any) {
    if (err?.code === 'ENOENT') return undefined;
    throw err;
  }
}

async function createExclusive(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(`${SELF.pid} ${SELF.start}\n`);
    } finally {
      await fh.close();
    }
    return true;
  } catch (err: any) {
    if (err?.code === 'EEXIST') return false;
    throw err;
  }
}

/** A lock that is held; `release()` is idempotent. */
export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Remove `path` if its owner is dead. Returns true if the lock is now free (or was). */
async function breakIfStale(path: string): Promise<boolean> {
  const owner = await readOwner(path);
  if (owner === undefined) return true;
  // A lock file being written this instant can read as empty: treat it as alive.
  if (owner.pid === -1 || ownerAlive(owner)) return false;
  const guard = `${path}.takeover`;
  if (!(await createExclusive(guard))) {
    const g = await readOwner(guard);
    if (g && g.pid !== -1 && !ownerAlive(g)) await unlink(guard).catch(() => {});
    return false;
  }
  try {
    const again = await readOwner(path);
    if (again && again.pid === owner.pid && again.start === owner.start) await unlink(path).catch(() => {});
  } finally {
    await unlink(guard).catch(() => {});
  }
  return true;
}

/** Try once; undefined if another live owner holds it. */
export async function tryLock(path: string): Promise<HeldLock | undefined> {
  await mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusive(path)) {
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => {});
        },
      };
    }
    if (!(await breakIfStale(path))) return undefined;
  }
  return undefined;
}

/**
 * Wait for the lock, polling with backoff. Unavailable (naming `what`) when `signal` aborts or
 * `timeoutMs` passes.
 */
export async function acquireLock(path: string, what: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<HeldLock> {
  const deadline = Date.now() + (opts.timeoutMs ?? Number.POSITIVE_INFINITY);
  let delay = 20;
  for (;;) {
    if (opts.signal?.aborted) throw unavailable(`${what}: gave up waiting for the lock held by another writer`, { cause: opts.signal.reason });
    const held = await tryLock(path);
    if (held) return held;
    if (Date.now() >= deadline) throw unavailable(`${what}: locked by another writer (${path})`);
    try {
      await sleep(delay, undefined, { signal: opts.signal });
    } catch (err) {
      if (err instanceof BerthError) throw err;
    }
    delay = Math.min(delay * 2, 250);
  }
}

/** Whether a live process holds the lock at `path`. */
export async function isLocked(path: string): Promise<boolean> {
  const owner = await readOwner(path);
  return owner !== undefined && (owner.pid === -1 || ownerAlive(owner));
}
