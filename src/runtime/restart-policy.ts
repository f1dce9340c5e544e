/**
 * The restart policy as a PURE decision: given how a task ended and the backoff so far, whether
 * to start a new task and after how long. Kubernetes' CrashLoopBackOff numbers: 10 s, doubling,
 * capped at 5 min; a task that stayed up 10 min resets the backoff.
 */
import type { RestartPolicy } from '../manifest/types.ts';

export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 5 * 60_000;
export const BACKOFF_RESET_AFTER_MS = 10 * 60_000;

export interface TaskEnd {
  policy: RestartPolicy;
  exitCode: number;
  /** How long the task ran. */
  ranForMs: number;
  /** Consecutive restarts so far without a 10-minute run in between. */
  streak: number;
  /**
   * The exit status was lost with the supervisor: the machine rebooted (power cut) under the task.
   * Not the task's fault: restart at once (Always, OnFailure) without growing the backoff.
   */
  lost?: boolean;
}

export type RestartDecision = { restart: true; delayMs: number; streak: number; reason: string } | { restart: false; streak: number; reason: string };

export function backoffDelay(streak: number): number {
  return Math.min(BACKOFF_INITIAL_MS * 2 ** Math.min(streak, 30), BACKOFF_MAX_MS);
}

export function decideRestart(end: TaskEnd): RestartDecision {
  const streak = end.ranForMs >= BACKOFF_RESET_AFTER_MS ? 0 : end.streak;
  const how = end.lost ? 'exit status lost' : end.exitCode === 0 ? 'exited 0' : `failed with exit code ${end.exitCode}`;
  if (end.policy === 'Never') return { restart: false, streak, reason: `${how}; restartPolicy Never` };
  if (end.policy === 'OnFailure' && end.exitCode === 0) return { restart: false, streak, reason: `${how}; restartPolicy OnFailure` };
  if (end.lost) return { restart: true, delayMs: 0, streak, reason: `exit status lost (reboot?); restartPolicy ${end.policy}: restart now` };
  const delayMs = backoffDelay(streak);
  return { restart: true, delayMs, streak: streak + 1, reason: `${how}; restartPolicy ${end.policy}: restart in ${delayMs / 1000}s` };
}
