/**
 * A memory-reducing garbage collection after idle turns (issue 14, idle memory). Work (start-up, an
 * import, pulls, creating containers) leaves V8 holding the bytecode it compiled for that work and a
 * heap sized for it, and every idle turn (the manifests parsed again, the runtime's state read)
 * leaves garbage and recompiled code that V8's own collections, rare at idle, keep for minutes. A
 * last-resort collection (what V8 runs before giving up on memory) flushes the bytecode of every
 * function not running, compacts and returns the free pages. On the demo (bin/berth's flags, 5
 * minutes): the daemon stays at 61.7-62.2 MiB instead of 64-65, for about 70 ms of CPU a minute
 * more (a collection and the idle turn's code compiled again each turn). Once after work only was
 * not enough: the next idle turns brought it back to 64 MiB.
 *
 * It needs node's `--expose-gc` (bin/berth passes it to `berth run`); without it, nothing happens.
 */

/** V8's gc() under --expose-gc, with the options its extension reads. */
export type ExposedGc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export function exposedGc(): ExposedGc | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as ExposedGc) : undefined;
}

export interface IdleCollectionOptions {
  gc?: ExposedGc;
  /**
   * Between idle turns, collect at most this often (half the resync interval: each resync, but not
   * each 5 s recheck of a held update lock). After work, the first idle turn always collects.
   */
  everyMs: number;
  now?: () => number;
}

export class IdleCollection {
  private readonly gc: ExposedGc | undefined;
  private readonly everyMs: number;
  private readonly now: () => number;
  /** Work was done since the last collection: start-up counts as work. */
  private worked = true;
  private last = -Infinity;

  constructor(opts: IdleCollectionOptions) {
    this.gc = 'gc' in opts ? opts.gc : exposedGc();
    this.everyMs = opts.everyMs;
    this.now = opts.now ?? performance.now.bind(performance);
  }

  /** After each turn; `didWork`: a step was done or failed, or the turn asked for another. True when it collected. */
  afterTurn(didWork: boolean): boolean {
    if (didWork) {
      this.worked = true;
      return false;
    }
    const now = this.now();
    if (!this.gc || (!this.worked && now - this.last < this.everyMs)) return false;
    this.worked = false;
    this.last = now;
    this.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    return true;
  }
}
