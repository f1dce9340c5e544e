/**
 * PURE: a container's health and how one probe result changes it (Docker's rules). A task starts
 * `starting`; a success makes it `healthy`; after the start period, `retries` failures in a row make
 * it `unhealthy`. Within the start period, failures do not count while it is still `starting`.
 */
import { describeHealthcheck, type Healthcheck } from './healthcheck.ts';
import type { ProbeResult } from './probe.ts';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthState {
  status: HealthStatus;
  /** Failures in a row that counted (none within the start period while starting). */
  failingStreak: number;
  /** The check's retries: `failingStreak` reaching it means unhealthy. */
  retries: number;
  /** The check, for humans (`exec …`, `http host:port/path`, `tcp host:port`). */
  check: string;
  /** The last probe's output (at most 4 KiB) and code (exec exit code, http status; null: timed out). */
  output: string;
  code?: number | null;
  /** When the last probe started (ms since the epoch); absent before the first. */
  lastProbeAt?: number;
  /** When `status` last changed. */
  changedAt: number;
  /** Which task this is about: its start time (a new task starts over). */
  taskStartedAtMs: number;
}

export function startingHealth(check: Healthcheck, taskStartedAtMs: number, now: number): HealthState {
  return { status: 'starting', failingStreak: 0, retries: check.retries, check: describeHealthcheck(check), output: '', changedAt: now, taskStartedAtMs };
}

export function afterProbe(prev: HealthState, result: ProbeResult, check: Healthcheck, now: number): HealthState {
  const next: HealthState = { ...prev, output: result.output, code: result.code, lastProbeAt: result.startedAtMs };
  if (result.healthy) {
    next.failingStreak = 0;
    next.status = 'healthy';
  } else {
    const inStartPeriod = result.startedAtMs - prev.taskStartedAtMs < check.startPeriodMs;
    if (!(inStartPeriod && prev.status === 'starting')) {
      next.failingStreak = prev.failingStreak + 1;
      if (next.failingStreak >= check.retries) next.status = 'unhealthy';
    }
  }
  if (next.status !== prev.status) next.changedAt = now;
  return next;
}

/**
 * What a user would notice: status, output, code, and the streak up to `retries` (past that it
 * only grows, and writing it on every probe would wear an SD card out for nothing).
 */
export function visiblyChanged(a: HealthState | undefined, b: HealthState): boolean {
  if (!a) return true;
  return (
    a.status !== b.status ||
    a.output !== b.output ||
    a.code !== b.code ||
    a.taskStartedAtMs !== b.taskStartedAtMs ||
    a.check !== b.check ||
    Math.min(a.failingStreak, a.retries) !== Math.min(b.failingStreak, b.retries)
  );
}
