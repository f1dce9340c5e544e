/**
 * The level-triggered loop: each turn observes, plans from scratch and executes. Events (a
 * manifest changed, a task exited, the resync timer) only make the next turn come sooner, so a
 * missed event can never leave the device wrong for longer than one resync interval.
 *
 * Triggers that arrive during a turn are coalesced into exactly one more turn; bursts (an editor
 * saving several files) are debounced.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface LoopOptions {
  /** One observe → plan → execute turn. Its errors are reported and the loop goes on. */
  turn: (reasons: string[], signal: AbortSignal) => Promise<void>;
  resyncIntervalMs: number;
  /** How long to wait for more triggers before starting a turn. */
  debounceMs?: number;
  onError?: (err: unknown) => void;
  timers?: Timers;
}

export class ReconcileLoop {
  private readonly opts: Required<Omit<LoopOptions, 'onError'>> & Pick<LoopOptions, 'onError'>;
  private pending: string[] = [];
  private wake: (() => void) | undefined;
  private debounceHandle: unknown;
  private resyncHandle: unknown;

  constructor(opts: LoopOptions) {
    this.opts = { debounceMs: 200, timers: realTimers, ...opts };
  }

  /** Ask for a turn soon (after the debounce), saying why. Safe to call at any time. */
  trigger(reason: string, opts: { immediate?: boolean } = {}): void {
    if (!this.pending.includes(reason)) this.pending.push(reason);
    const { timers } = this.opts;
    if (this.debounceHandle !== undefined) timers.clearTimeout(this.debounceHandle);
    this.debounceHandle = undefined;
    if (opts.immediate || this.opts.debounceMs === 0) {
      this.wake?.();
      return;
    }
    this.debounceHandle = timers.setTimeout(() => {
      this.debounceHandle = undefined;
      this.wake?.();
    }, this.opts.debounceMs);
  }

  /** Run turns until `signal` aborts. The first turn starts at once. */
  async run(signal: AbortSignal): Promise<void> {
    const { timers } = this.opts;
    this.pending.push('start');
    while (!signal.aborted) {
      const reasons = this.pending;
      this.pending = [];
      try {
        await this.opts.turn(reasons, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.opts.onError?.(err);
      }
      if (signal.aborted) break;
      if (this.pending.length > 0 && this.debounceHandle === undefined) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake = undefined;
          timers.clearTimeout(this.resyncHandle);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wake = done;
        this.resyncHandle = timers.setTimeout(() => {
          this.pending.push('resync');
          done();
        }, this.opts.resyncIntervalMs);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.debounceHandle !== undefined) timers.clearTimeout(this.debounceHandle);
  }
}
