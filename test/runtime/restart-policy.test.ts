/** The restart policy's decisions and back-off (pure: the reconciler's plan applies them). */
import { describe, expect, it } from 'vitest';
import { backoffDelay, decideRestart } from '../../src/runtime/restart-policy.ts';

describe('decideRestart (pure)', () => {
  it.each([
    ['Never', 1, false],
    ['Never', 0, false],
    ['OnFailure', 0, false],
    ['OnFailure', 3, true],
    ['Always', 0, true],
    ['Always', 137, true],
  ] as const)('%s after exit %i: restart=%s', (policy, exitCode, restart) => {
    expect(decideRestart({ policy, exitCode, ranForMs: 1000, streak: 0 }).restart).toBe(restart);
  });

  it('backs off 10 s, doubling, capped at 5 min', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10].map(backoffDelay)).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    let streak = 0;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const d = decideRestart({ policy: 'Always', exitCode: 1, ranForMs: 5_000, streak });
      if (!d.restart) throw new Error('expected a restart');
      delays.push(d.delayMs);
      streak = d.streak;
    }
    expect(delays).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it('resets the backoff after 10 minutes up', () => {
    const d = decideRestart({ policy: 'Always', exitCode: 1, ranForMs: 10 * 60_000, streak: 6 });
    expect(d).toMatchObject({ restart: true, delayMs: 10_000, streak: 1 });
    const e = decideRestart({ policy: 'Always', exitCode: 1, ranForMs: 10 * 60_000 - 1, streak: 6 });
    expect(e).toMatchObject({ restart: true, delayMs: 300_000, streak: 7 });
  });

  it('a lost exit status (reboot) restarts at once without growing the backoff, unless Never', () => {
    expect(decideRestart({ policy: 'Always', exitCode: 255, ranForMs: 1000, streak: 3, lost: true })).toMatchObject({ restart: true, delayMs: 0, streak: 3 });
    expect(decideRestart({ policy: 'OnFailure', exitCode: 255, ranForMs: 1000, streak: 0, lost: true })).toMatchObject({ restart: true, delayMs: 0 });
    expect(decideRestart({ policy: 'Never', exitCode: 255, ranForMs: 1000, streak: 0, lost: true }).restart).toBe(false);
  });

  it('says why it does not restart', () => {
    expect(decideRestart({ policy: 'OnFailure', exitCode: 0, ranForMs: 1, streak: 0 }).reason).toBe('exited 0; restartPolicy OnFailure');
  });
});
