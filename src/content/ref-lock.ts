/**
 * A lock per ingest ref that works across processes (node has no flock): a lock file holding its
 * owner's identity (pid, process start time and boot id: src/owner-identity.ts), so neither a
 * recycled pid nor a reboot is mistaken for the owner. A lock whose owner is gone is stale and
 * taken over. Takeover itself is guarded by a second lock file so two processes cannot both
 * remove a stale lock and both win.
 *
 * A lock file is written whole before it gets its name: the identity goes into a temporary file,
 * which is fsynced and then hard-linked to the lock's name (link fails if the name exists, like
 * O_EXCL). So a lock file is never seen half-written, and one that is empty or garbled (a power
 * cut before its data reached the disk, on a filesystem that allows that) names no owner and is
 * stale, instead of reading as pid 0, which `kill(0, 0)` calls alive, forever.
 */
import { link, open, readFile, unlink, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ifExists } from '../durable-file.ts';
import { BerthError, unavailable } from '../errors.ts';
import { describeOwner, formatOwner, ownerTextAlive, selfIdentity } from '../owner-identity.ts';

/** How long a writer waits for another process's lock on the same ref by default. */
export const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;

/** Suffix of the temporary files a lock is written to before it is linked to its name. */
export const LOCK_TMP_SUFFIX = '.lock-tmp';

/** The owner text of a lock file; undefined if there is no lock. */
function readOwnerText(path: string): Promise<string | undefined> {
  return ifExists(readFile(path, 'utf8'));
}

/** Create `path` holding this process's identity, durably; false if it exists. */
async function createExclusive(path: string): Promise<boolean> {
  const token = formatOwner(selfIdentity());
  const tmp = `${path}.${token}.${randomBytes(4).toString('hex')}${LOCK_TMP_SUFFIX}`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${token}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (err: any) {
    if (err?.code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Whether a lock's temporary file (left by a process killed between writing and linking it) can
 * be removed: its name carries its writer's identity.
 */
export function lockTmpIsStale(fileName: string): boolean {
  const m = /\.(\d+-\d+-[0-9a-f]{32})\.[0-9a-f]+\.lock-tmp$/.exec(fileName);
  return !m || !ownerTextAlive(m[1]);
}

/** A lock that is held; `release()` is idempotent. */
export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Remove `path` if its owner is gone. Returns true if the lock is now free (or was). */
async function breakIfStale(path: string): Promise<boolean> {
  const owner = await readOwnerText(path);
  if (owner === undefined) return true;
  if (ownerTextAlive(owner)) return false;
  const guard = `${path}.takeover`;
  if (!(await createExclusive(guard))) {
    const g = await readOwnerText(guard);
    if (g !== undefined && !ownerTextAlive(g)) await unlink(guard).catch(() => {});
    return false;
  }
  try {
    // Still the same stale owner (not a new lock taken meanwhile by a live process)?
    if ((await readOwnerText(path)) === owner) await unlink(path).catch(() => {});
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
 * Wait for the lock, polling with backoff. Unavailable, naming `what`, the lock file and its
 * holder, when `signal` aborts or `timeoutMs` (default DEFAULT_LOCK_WAIT_MS) passes: a wait is
 * never unbounded.
 */
export async function acquireLock(path: string, what: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<HeldLock> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_WAIT_MS;
  const deadline = Date.now() + timeoutMs;
  const held = async () => describeOwner(await readOwnerText(path).catch(() => undefined));
  let delay = 20;
  for (;;) {
    if (opts.signal?.aborted) throw unavailable(`${what}: gave up waiting for the lock ${path} held by ${await held()}`, { cause: opts.signal.reason });
    const lock = await tryLock(path);
    if (lock) return lock;
    if (Date.now() >= deadline) throw unavailable(`${what}: the lock ${path} is still held by ${await held()} after ${Math.round(timeoutMs / 1000)} s`);
    try {
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())), undefined, { signal: opts.signal });
    } catch (err) {
      if (err instanceof BerthError) throw err;
    }
    delay = Math.min(delay * 2, 250);
  }
}

/** Whether a live process holds the lock at `path`. */
export async function isLocked(path: string): Promise<boolean> {
  const owner = await readOwnerText(path);
  return owner !== undefined && ownerTextAlive(owner);
}
