import { describe, expect, it } from 'vitest';
import { ReconcileLoop } from '../../src/reconcile/loop.ts';

describe('ReconcileLoop', () => {
  it('runs a first turn at once, coalesces triggers during a turn into one more turn, and resyncs on the timer', async () => {
    const turns: string[][] = [];
    const ac = new AbortController();
    let release!: () => void;
    const firstTurnBlocked = new Promise<void>((r) => (release = r));
    const loop = new ReconcileLoop({
      resyncIntervalMs: 150,
      debounceMs: 10,
      turn: async (reasons) => {
        turns.push(reasons);
        if (turns.length === 1) await firstTurnBlocked;
        if (turns.length === 3) ac.abort();
      },
    });
    const running = loop.run(ac.signal);
    await new Promise((r) => setTimeout(r, 20));
    loop.trigger('manifests changed');
    loop.trigger('manifests changed');
    loop.trigger('task exited');
    release();
    await running;
    expect(turns[0]).toEqual(['start']);
    expect(turns[1]).toEqual(['manifests changed', 'task exited']);
    expect(turns[2]).toEqual(['resync']);
  });

  it('keeps going after a turn fails, reporting the error', async () => {
    const errors: unknown[] = [];
    const ac = new AbortController();
    let n = 0;
    const loop = new ReconcileLoop({
      resyncIntervalMs: 5,
      turn: async () => {
        n++;
        if (n === 1) throw new Error('registry down');
        ac.abort();
      },
      onError: (e) => errors.push(e),
    });
    await loop.run(ac.signal);
    expect(n).toBe(2);
    expect(String(errors[0])).toContain('registry down');
  });
});
