/**
 * Whether an update may stop a running container now: the update window must be open and the
 * app must not hold its update lock. PURE: the caller observes the lock (src/runtime/update-lock.ts)
 * and passes the clock. Only updates of a running container ask; repairs and restarts of crashed
 * containers never do.
 */
import { updateWindowState, type UpdateWindow } from '../config/update-window.ts';

export interface UpdateGatePolicy {
  /** `[updates] windows`; empty: always open. */
  windows: readonly UpdateWindow[];
  /** `[updates] max_lock_hold`: a lock held longer than this no longer holds the update off. */
  maxLockHoldMs?: number;
  /** `berth apply --force`: update now, whatever the window or the lock. */
  force?: boolean;
  /** The zone the windows are read in; default the device's. */
  timeZone?: string;
}

export interface UpdateGateObservation {
  /** Since when (ms since the epoch) the app has held its update lock; undefined: not held. */
  lockHeldSinceMs?: number;
}

export type UpdateGateDecision =
  /** `override` says which hold was overridden, for an event. */
  | { allowed: true; override?: string }
  /** `until`: when asking again can change the answer (the window opens, the hold limit passes); absent: on the lock's release. */
  | { allowed: false; reason: string; until?: number };

export function updateGate(policy: UpdateGatePolicy, observed: UpdateGateObservation, nowMs: number): UpdateGateDecision {
  if (policy.force) return { allowed: true };
  const window = updateWindowState(policy.windows, new Date(nowMs), policy.timeZone);
  if (!window.open) {
    const until = window.opensAt.getTime();
    return { allowed: false, reason: `Staged, waiting for the update window (opens in ${waitText(until - nowMs)})`, until };
  }
  if (observed.lockHeldSinceMs === undefined) return { allowed: true };
  const heldForMs = Math.max(0, nowMs - observed.lockHeldSinceMs);
  if (policy.maxLockHoldMs === undefined) return { allowed: false, reason: 'Waiting (update lock held by the app)' };
  if (heldForMs >= policy.maxLockHoldMs) {
    return { allowed: true, override: `update lock held for ${elapsedText(heldForMs)}, max_lock_hold is ${elapsedText(policy.maxLockHoldMs)}` };
  }
  return { allowed: false, reason: 'Waiting (update lock held by the app)', until: observed.lockHeldSinceMs + policy.maxLockHoldMs };
}

/** `45m`, `5h12m`, `2d3h`: whole minutes, rounded up so a wait never reads as 0m. */
export function waitText(ms: number): string {
  return minutesText(Math.max(1, Math.ceil(ms / 60_000)));
}

/** `0s`, `40s`, `2h30m`: how long something has lasted, rounded down. */
export function elapsedText(ms: number): string {
  return ms < 60_000 ? `${Math.max(0, Math.floor(ms / 1000))}s` : minutesText(Math.floor(ms / 60_000));
}

function minutesText(minutes: number): string {
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
  return `${Math.floor(hours / 24)}d${hours % 24 ? `${hours % 24}h` : ''}`;
}
