/** Start-first's gate (no root): when a successor counts as ready, and when it will not be. */
import { describe, expect, it } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { waitSuccessorReady, type SuccessorReadyOptions } from '../../src/reconcile/successor-ready.ts';
import type { ContainerStatus } from '../../src/runtime/container-runtime.ts';
import { fromManifest } from '../../src/runtime/health/healthcheck.ts';

/** A successor whose task runs until `exitsAfterPolls` status reads, and whose check passes from probe `healthyFrom` on. */
function world(o: { exitsAfterPolls?: number; healthyFrom?: number }) {
  let polls = 0;
  let probes = 0;
  const runtime: SuccessorReadyOptions['runtime'] = {
    status: async () => {
      polls++;
      const running = o.exitsAfterPolls === undefined || polls <= o.exitsAfterPolls;
      return (running
        ? { name: 'web', state: 'running', startedAtMs: Date.now() - 5_000 }
        : { name: 'web', state: 'exited', exit: { exitCode: 3, oomKilled: false } }) as unknown as ContainerStatus;
    },
    exec: async () => {
      probes++;
      const ok = o.healthyFrom !== undefined && probes >= o.healthyFrom;
      return { exitCode: ok ? 0 : 1, output: ok ? '' : 'not yet', timedOut: false } as never;
    },
  };
  return { runtime, probes: () => probes };
}

const check = fromManifest({ exec: ['/ready'], intervalMs: 10, timeoutMs: 1000, retries: 3, startPeriodMs: 0 });
const base = { name: 'web', instance: 'web.abc', network: 'none' as const, signal: new AbortController().signal, sleep: async () => {} };

describe('waitSuccessorReady', () => {
  it('no check: ready once it keeps running for the settle time', async () => {
    const w = world({});
    await expect(waitSuccessorReady({ ...base, runtime: w.runtime })).resolves.toBeUndefined();
  });

  it('a successor that exits: FailedPrecondition naming the exit code; the old one keeps running', async () => {
    const w = world({ exitsAfterPolls: 0 });
    const err = await waitSuccessorReady({ ...base, runtime: w.runtime, check }).catch((e) => e);
    expect(isKind(err, 'FailedPrecondition')).toBe(true);
    expect(err.message).toBe('web: the new container exited with code 3 before it was ready; the old one keeps running');
  });

  it('with a check: ready at the first passing probe', async () => {
    const w = world({ healthyFrom: 2 });
    await waitSuccessorReady({ ...base, runtime: w.runtime, check });
    expect(w.probes()).toBe(2);
  });

  it('with a check that keeps failing: refused after its retries, with its output', async () => {
    const w = world({});
    const err = await waitSuccessorReady({ ...base, runtime: w.runtime, check }).catch((e) => e);
    expect(err.message).toBe('web: the new container stayed unhealthy (not yet); the old one keeps running');
    expect(w.probes()).toBe(3);
  });
});
