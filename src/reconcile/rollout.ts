/**
 * Rollouts: a new generation is not trusted until every container it changed has proved itself.
 * PURE: `judgeRollout` looks at the generation, the desired documents, what observe saw and the
 * probes' verdicts, and says whether to confirm, roll back, or keep watching (and until when).
 *
 * The rules:
 * - A changed container fails its rollout when its create failed, when it exited (a non-zero code,
 *   an OOM kill, a lost exit, or any exit of a container meant to keep running), or when its probe
 *   says unhealthy (past its retries). One failure rolls back the whole generation.
 * - It is confirmed once it has run for `update.confirmAfter` since its task started, and, if it
 *   has a probe, the probe says healthy. A one-shot container that exited 0 is confirmed too.
 * - A generation is confirmed when it is applied (no step left) and all its changes are confirmed.
 */
import { DEFAULT_CONFIRM_AFTER_MS, type ContainerDoc, type DesiredState } from '../manifest/types.ts';
import type { Generation } from '../metadata/metadata.ts';
import type { ActualContainer } from './types.ts';

export type HealthVerdict = 'starting' | 'healthy' | 'unhealthy';

export interface RolloutInput {
  generation: Pick<Generation, 'id' | 'result' | 'changed'>;
  desired: DesiredState;
  containers: ActualContainer[];
  /** The probe's verdict per container, for those that have a probe. */
  health: (name: string) => { status: HealthVerdict; output?: string } | undefined;
  /** Containers whose create, recreate or restore failed in this generation, with why. */
  failedSteps: Map<string, string>;
  now: number;
}

export type RolloutVerdict =
  | { verdict: 'confirm' }
  | { verdict: 'rollback'; reason: string; container: string }
  /** `until`: the earliest time a container can be confirmed (for the loop's wake-up). */
  | { verdict: 'watch'; waiting: Array<{ container: string; why: string; until?: number }> };

export function judgeRollout(input: RolloutInput): RolloutVerdict {
  const { generation, desired, now } = input;
  const docs = new Map(desired.containers.map((d) => [d.metadata.name, d] as const));
  const actual = new Map(input.containers.map((c) => [c.name, c] as const));
  const waiting: Array<{ container: string; why: string; until?: number }> = [];
  for (const name of generation.changed) {
    const doc = docs.get(name);
    if (!doc) continue; // removed by this generation: nothing to prove
    const failed = input.failedSteps.get(name);
    if (failed !== undefined) return { verdict: 'rollback', container: name, reason: `${name}: ${failed}` };
    const a = actual.get(name);
    if (!a || a.state === 'absent' || a.state === 'created') {
      waiting.push({ container: name, why: `${name}: not started yet` });
      continue;
    }
    if (a.state === 'exited') {
      const exitedCleanly = a.exitCode === 0 && !a.oomKilled && !a.exitLost;
      if (exitedCleanly && doc.spec.restartPolicy !== 'Always') continue; // a job that did its work
      return { verdict: 'rollback', container: name, reason: `${name}: ${describeExit(a)} before its update was confirmed` };
    }
    const health = input.health(name);
    if (health?.status === 'unhealthy') {
      return { verdict: 'rollback', container: name, reason: `${name}: unhealthy${health.output ? ` (${health.output.trim().slice(0, 200)})` : ''}` };
    }
    const confirmAt = (a.startedAt ?? now) + confirmAfterMs(doc);
    if (confirmAt > now) {
      waiting.push({ container: name, why: `${name}: confirming (${Math.ceil((confirmAt - now) / 1000)}s to go)`, until: confirmAt });
    } else if (health !== undefined && health.status !== 'healthy') {
      waiting.push({ container: name, why: `${name}: waiting to be healthy (${health.status})` });
    }
  }
  if (waiting.length > 0 || generation.result === 'pending') return { verdict: 'watch', waiting };
  return { verdict: 'confirm' };
}

export function confirmAfterMs(doc: ContainerDoc): number {
  return doc.spec.update?.confirmAfterMs ?? DEFAULT_CONFIRM_AFTER_MS;
}

function describeExit(a: ActualContainer): string {
  if (a.exitLost) return 'its exit was lost';
  if (a.oomKilled) return 'was OOM-killed';
  if (a.exitCode === undefined) return 'exited (status unknown)';
  return `exited with code ${a.exitCode}`;
}

/** Setting key: the generation `berth rollout undo` holds, and the manifests' hash it holds against. */
export const ROLLOUT_HOLD = 'rollout.hold';

export interface RolloutHold {
  generation: number;
  /** The manifests' desired-state hash when the hold began: the hold ends when they change. */
  manifestsHash: string | null;
}

export function readHold(value: string | undefined): RolloutHold | undefined {
  if (value === undefined) return undefined;
  try {
    const h = JSON.parse(value);
    return typeof h?.generation === 'number' ? { generation: h.generation, manifestsHash: h.manifestsHash ?? null } : undefined;
  } catch {
    return undefined;
  }
}
