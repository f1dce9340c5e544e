/**
 * When an exited container is restarted by its policy: exponential back-off from 10 s, doubling
 * up to 5 min, reset once the container had stayed up for 10 min (issue 4). Pure: the caller passes
 * the times in, so tests and the plan never sleep.
 */
import type { RestartPolicy } from '../manifest/types.ts';

export interface BackoffSettings {
  initialMs: number;
  maxMs: number;
  /** A run at least this long resets the back-off. */
  resetAfterUpMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { initialMs: 10_000, maxMs: 300_000, resetAfterUpMs: 600_000 };

export interface ExitFacts {
  exitCode?: number;
  oomKilled?: boolean;
  /** Restarts by policy since the last reset. */
  restartCount: number;
  startedAt?: number;
  finishedAt?: number;
}

export type RestartDecision =
  | { restart: false; why: string }
  | {
      restart: true;
      /** When the restart is due (ms since the epoch); now or earlier means at once. */
      dueAt: number;
      delayMs: number;
      /** The restart count to record once restarted. */
      nextRestartCount: number;
      why: string;
    };

/** A failure is a non-zero exit, an unknown exit status, or an OOM kill. */
export function exitedWithFailure(f: ExitFacts): boolean {
  return f.oomKilled === true || f.exitCode === undefined || f.exitCode !== 0;
}

export function describeExit(f: ExitFacts): string {
  if (f.oomKilled) return 'OOM-killed';
  if (f.exitCode === undefined) return 'exited (status unknown)';
  return `exited with code ${f.exitCode}`;
}

export function restartDecision(policy: RestartPolicy, f: ExitFacts, settings: BackoffSettings = DEFAULT_BACKOFF): RestartDecision {
  const exit = describeExit(f);
  if (policy === 'Never') return { restart: false, why: `${exit}; restartPolicy Never` };
  if (policy === 'OnFailure' && !exitedWithFailure(f)) return { restart: false, why: `${exit}; restartPolicy OnFailure` };
  const upMs = f.startedAt !== undefined && f.finishedAt !== undefined ? f.finishedAt - f.startedAt : 0;
  const count = upMs >= settings.resetAfterUpMs ? 0 : f.restartCount;
  const delayMs = Math.min(settings.initialMs * 2 ** Math.min(count, 30), settings.maxMs);
  return {
    restart: true,
    dueAt: (f.finishedAt ?? 0) + delayMs,
    delayMs,
    nextRestartCount: count + 1,
    why: `${exit}; restartPolicy ${policy}`,
  };
}
