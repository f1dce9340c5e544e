/**
 * The reconcile lock: only one berth process (the CLI `apply` or the daemon `run`) reconciles at a
 * time. It is a row in the metadata database's `locks` table (name, random token, pid, holder,
 * expiry), taken inside a `BEGIN IMMEDIATE` transaction so two processes cannot both win.
 *
 * Why a row and not a lock file: the row lives in the same crash-safe file as the record it
 * protects, needs no flock (Node has none), and explains itself (`held by berth run (pid 812)
 * until 06:40:00`). A holder that dies is detected two ways: its pid no longer exists (immediate,
 * same pid namespace) or its expiry passes (the holder renews every ttl/3 while it works), so a
 * `kill -9` never wedges the next berth.
 */
import { BerthError, unavailable } from '../errors.ts';
import { formatOwner, ownerTextAlive, selfIdentity } from '../owner-identity.ts';
import type { LockInfo, Metadata } from './metadata.ts';

export const RECONCILE_LOCK = 'reconcile';

/**
 * The holder text ends with the holder's owner identity (pid, start time, boot id), so a lock row
 * left by a process whose pid now belongs to another (after a reboot, its expiry can still lie
 * ahead: a device without a clock boots into the past) is taken over at once, not only when the
 * pid is free. A row of an older berth, without it, is judged by its pid and expiry alone.
 */
const OWNER_SUFFIX = / \{owner ([^}]*)\}$/;

/** The holder as people read it, without the owner identity. */
function holderName(holder: string): string {
  return holder.replace(OWNER_SUFFIX, '');
}

/** Delete the named lock's row if the owner identity it records is not alive. */
function releaseIfOwnerGone(md: Metadata, name: string): void {
  const held = md.getLock(name);
  const owner = held && OWNER_SUFFIX.exec(held.holder)?.[1];
  if (held && owner !== undefined && !ownerTextAlive(owner)) md.releaseLock(held); // by its token: a newer row is left alone
}

export interface AcquireLockOptions {
  /** Who is asking, for the message the other process prints: e.g. `berth apply`. */
  holder: string;
  /** How long the lock lasts without renewal. Default 60 s. */
  ttlMs?: number;
  /** How long to wait for a held lock before giving up with Unavailable. Default 0 (don't wait). */
  waitMs?: number;
  /** Poll interval while waiting. Default 200 ms. */
  pollMs?: number;
  /** Called once if the lock is held when first tried and this call is going to wait for it. */
  onWait?: (heldBy: LockInfo) => void;
  signal?: AbortSignal;
}

/** Take the named lock, waiting up to `waitMs`; Unavailable naming the holder if it stays held. */
export async function acquireLock(md: Metadata, name: string, opts: AcquireLockOptions): Promise<LockInfo> {
  const ttlMs = opts.ttlMs ?? 60_000;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const pollMs = opts.pollMs ?? 200;
  const holder = `${opts.holder} {owner ${formatOwner(selfIdentity())}}`;
  for (let tries = 0; ; tries++) {
    opts.signal?.throwIfAborted();
    releaseIfOwnerGone(md, name);
    const attempt = md.tryAcquireLock(name, { holder, ttlMs });
    if (attempt.acquired) return { ...attempt.lock, holder: opts.holder };
    const h = { ...attempt.heldBy, holder: holderName(attempt.heldBy.holder) };
    if (tries === 0 && Date.now() < deadline) opts.onWait?.(h);
    if (Date.now() >= deadline) {
      throw unavailable(
        `${name} lock is held by ${h.holder} (pid ${h.pid}) since ${h.acquiredAt.toISOString()}, until ${h.expiresAt.toISOString()} unless renewed; try again when it finishes`,
      );
    }
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(done, Math.min(pollMs, Math.max(1, deadline - Date.now())));
      function done() {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      }
      function onAbort() {
        clearTimeout(t);
        reject(opts.signal!.reason ?? new BerthError('Aborted', 'aborted'));
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Run `fn` holding the named lock, renewing it every ttl/3 and releasing it afterwards (also on
 * error). If a renewal finds the lock lost (this process stalled past the ttl and another took
 * over), the signal passed to `fn` is aborted with the FailedPrecondition error.
 */
export async function withLock<T>(md: Metadata, name: string, opts: AcquireLockOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ttlMs = opts.ttlMs ?? 60_000;
  let lock = await acquireLock(md, name, opts);
  const lost = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, lost.signal]) : lost.signal;
  const timer = setInterval(
    () => {
      try {
        lock = md.renewLock(lock, ttlMs);
      } catch (err) {
        clearInterval(timer);
        lost.abort(err);
      }
    },
    Math.max(10, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  try {
    return await fn(signal);
  } finally {
    clearInterval(timer);
    md.releaseLock(lock);
  }
}
