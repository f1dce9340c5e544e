/**
 * Table tests of the pure rollout rules: judgeRollout (confirm, roll back, keep watching) and the
 * plan's restore of a container a rollout replaced. Real YAML through the real loader, no disk.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { plan } from '../../src/reconcile/plan.ts';
import { judgeRollout, type RolloutInput } from '../../src/reconcile/rollout.ts';
import type { ActualContainer, ActualState } from '../../src/reconcile/types.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const DIGEST = `sha256:${'a'.repeat(64)}`;
const REF = '127.0.0.1:5000/busybox:latest';

function desiredOf(webLines: string[], restartPolicy = 'Always'): DesiredState {
  const yaml = `apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: "${REF}"\n  restartPolicy: ${restartPolicy}\n${webLines.map((l) => `  ${l}`).join('\n')}\n`;
  const r = parseManifestSources([{ file: 'm.yaml', text: yaml }], validator);
  expect(r.problems).toEqual([]);
  return r.state!;
}

function running(desired: DesiredState, over: Partial<ActualContainer> = {}): ActualContainer {
  const doc = desired.containers[0]!;
  return {
    name: 'web',
    specHash: containerSpecHash(doc, DIGEST),
    imageRef: doc.imageRef,
    imageDigest: DIGEST,
    appliedSpec: normaliseContainerSpec(doc),
    state: 'running',
    backoffStreak: 0,
    startedAt: NOW - 1000,
    ...over,
  };
}

function judge(desired: DesiredState, c: ActualContainer | undefined, over: Partial<RolloutInput> = {}) {
  return judgeRollout({
    generation: { id: 2, result: 'progressing', changed: ['web'] },
    desired,
    containers: c ? [c] : [],
    health: () => undefined,
    failedSteps: new Map(),
    now: NOW,
    ...over,
  });
}

describe('judgeRollout', () => {
  it('watches until confirmAfter has passed since the task started, then confirms', () => {
    const d = desiredOf(['update: {confirmAfter: 10s}']);
    expect(judge(d, running(d, { startedAt: NOW - 4000 }))).toEqual({
      verdict: 'watch',
      waiting: [{ container: 'web', why: 'web: confirming (6s to go)', until: NOW + 6000 }],
    });
    expect(judge(d, running(d, { startedAt: NOW - 10_000 }))).toEqual({ verdict: 'confirm' });
  });

  it('the default confirmAfter is 5 s', () => {
    const d = desiredOf([]);
    expect(judge(d, running(d, { startedAt: NOW - 4999 })).verdict).toBe('watch');
    expect(judge(d, running(d, { startedAt: NOW - 5000 })).verdict).toBe('confirm');
  });

  it('rolls back on a failed step, any exit of an Always container, an OOM kill, a lost exit, or unhealthy', () => {
    const d = desiredOf([]);
    const cases: Array<[Partial<ActualContainer>, Partial<RolloutInput>, RegExp]> = [
      [{}, { failedSteps: new Map([['web', 'command "/nope" not found']]) }, /web: command "\/nope" not found/],
      [{ state: 'exited', exitCode: 1 }, {}, /web: exited with code 1 before its update was confirmed/],
      [{ state: 'exited', exitCode: 0 }, {}, /exited with code 0/],
      [{ state: 'exited', exitCode: 137, oomKilled: true }, {}, /OOM-killed/],
      [{ state: 'exited', exitLost: true }, {}, /exit was lost/],
      [{}, { health: () => ({ status: 'unhealthy', output: 'connection refused\n' }) }, /web: unhealthy \(connection refused\)/],
    ];
    for (const [c, input, reason] of cases) {
      const v = judge(d, running(d, c), input);
      expect(v.verdict, String(reason)).toBe('rollback');
      expect((v as { reason: string }).reason).toMatch(reason);
    }
  });

  it('a one-shot container that exited 0 is confirmed; one that failed is not', () => {
    const d = desiredOf([], 'OnFailure');
    expect(judge(d, running(d, { state: 'exited', exitCode: 0 })).verdict).toBe('confirm');
    expect(judge(d, running(d, { state: 'exited', exitCode: 2 })).verdict).toBe('rollback');
  });

  it('with a probe, confirmation also waits for healthy', () => {
    const d = desiredOf(['healthcheck: {tcp: {port: 8080}}', 'update: {confirmAfter: 1s}']);
    const c = running(d, { startedAt: NOW - 60_000 });
    expect(judge(d, c, { health: () => ({ status: 'starting' }) })).toEqual({
      verdict: 'watch',
      waiting: [{ container: 'web', why: 'web: waiting to be healthy (starting)' }],
    });
    expect(judge(d, c, { health: () => ({ status: 'healthy' }) }).verdict).toBe('confirm');
  });

  it('a pending generation (steps still to do) is never confirmed; a container not started yet is awaited', () => {
    const d = desiredOf([]);
    expect(judge(d, running(d, { startedAt: NOW - 60_000 }), { generation: { id: 2, result: 'pending', changed: ['web'] } }).verdict).toBe('watch');
    expect(judge(d, undefined)).toEqual({ verdict: 'watch', waiting: [{ container: 'web', why: 'web: not started yet' }] });
  });
});

describe('plan: restoring a retired container', () => {
  const actualWith = (c: ActualContainer, retiredHash: string): ActualState => ({
    images: [{ ref: REF, targetDigest: DIGEST, manifestDigest: DIGEST, blobsPresent: true, unpacked: true }],
    containers: [c],
    volumes: [],
    unreachableRegistries: [],
    retiredContainers: [{ name: 'web', specHash: retiredHash, imageDigest: DIGEST }],
  });

  it('restores the retired container when it is exactly what is wanted, instead of recreating', () => {
    const good = desiredOf(['env: {V: "1"}']);
    const bad = desiredOf(['env: {V: "2"}']);
    const steps = plan(good, actualWith(running(bad), containerSpecHash(good.containers[0]!, DIGEST)), NOW);
    expect(steps.map((s) => `${s.kind} ${s.reason}`)).toEqual([
      'restore web: restore the container the rollout replaced (env V changed)',
      'gc collect garbage (containers removed or replaced)',
    ]);
  });

  it('recreates when the retired container is not what is wanted', () => {
    const good = desiredOf(['env: {V: "1"}']);
    const other = desiredOf(['env: {V: "3"}']);
    const steps = plan(good, actualWith(running(desiredOf(['env: {V: "2"}'])), containerSpecHash(other.containers[0]!, DIGEST)), NOW);
    expect(steps[0]!.kind).toBe('recreate');
  });

  it('restores a retired container whose replacement is gone (a rollout that removed it)', () => {
    const good = desiredOf([]);
    const a = actualWith(running(good), containerSpecHash(good.containers[0]!, DIGEST));
    a.containers = [];
    expect(plan(good, a, NOW)[0]!.kind).toBe('restore');
  });
});

describe('plan: an unhealthy container', () => {
  const actualOf = (c: ActualContainer): ActualState => ({
    images: [{ ref: REF, targetDigest: DIGEST, manifestDigest: DIGEST, blobsPresent: true, unpacked: true }],
    containers: [c],
    volumes: [],
    unreachableRegistries: [],
  });

  it('is restarted like a crashed one under Always, after the back-off, stopping the task first', () => {
    const d = desiredOf([]);
    const waiting = plan(d, actualOf(running(d, { startedAt: NOW - 60_000, unhealthySince: NOW - 1000 })), NOW);
    expect(waiting).toEqual([
      { kind: 'wait', id: 'wait:container:web', after: [], object: 'web', reason: 'web: restart in 9s (unhealthy; restartPolicy Always)', until: NOW + 9000 },
    ]);
    const [start] = plan(d, actualOf(running(d, { startedAt: NOW - 60_000, unhealthySince: NOW - 10_000 })), NOW);
    expect(start).toMatchObject({ kind: 'start', container: 'web', stopFirst: true, backoffStreak: 1 });
  });

  it('is left running under OnFailure and Never', () => {
    for (const policy of ['OnFailure', 'Never']) {
      const d = desiredOf([], policy);
      expect(plan(d, actualOf(running(d, { unhealthySince: NOW - 60_000 })), NOW)).toEqual([]);
    }
  });
});

describe('plan: update holds (window closed, update lock held)', () => {
  const HOLD = { reason: 'Staged, waiting for the update window (opens in 5h12m)', until: NOW + 5 * 3600_000 };
  const actualOf = (c: ActualContainer, holds = { web: HOLD }): ActualState => ({
    images: [{ ref: REF, targetDigest: DIGEST, manifestDigest: DIGEST, blobsPresent: true, unpacked: true }],
    containers: [c],
    volumes: [],
    unreachableRegistries: [],
    updateHolds: holds,
  });

  it('turns the recreate of a running container into a wait saying why and until when', () => {
    const d = desiredOf(['env: {V: "2"}']);
    const steps = plan(d, actualOf(running(desiredOf(['env: {V: "1"}']))), NOW);
    expect(steps).toEqual([
      {
        kind: 'wait',
        id: 'wait:container:web',
        after: [],
        object: 'web',
        reason: 'web: Staged, waiting for the update window (opens in 5h12m) (then recreate (env V changed))',
        until: HOLD.until,
      },
    ]);
  });

  it('holds the removal of a running container too', () => {
    const other = desiredOf([]);
    const gone = { ...running(other), name: 'old' };
    const steps = plan(desiredOf([]), { ...actualOf(running(other), { old: HOLD } as never), containers: [running(other), gone] }, NOW);
    expect(steps.map((s) => s.kind)).toEqual(['wait']);
    expect(steps[0]!.reason).toMatch(/^old: Staged, waiting for the update window .*stop and remove/);
  });

  it('never holds a crash restart or a container that is not running', () => {
    const d = desiredOf([]);
    const crashed = running(d, { state: 'exited', exitCode: 1, startedAt: NOW - 60_000, finishedAt: NOW - 20_000 });
    expect(plan(d, actualOf(crashed), NOW)[0]).toMatchObject({ kind: 'start', container: 'web' });
    const changedAndExited = running(desiredOf(['env: {V: "1"}']), { state: 'exited', exitCode: 0 });
    expect(plan(desiredOf(['env: {V: "2"}']), actualOf(changedAndExited), NOW)[0]).toMatchObject({ kind: 'recreate' });
  });
});
