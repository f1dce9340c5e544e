/**
 * Where does a `pullPolicy: Always` tag point now? Asking the registry is the only way, and a
 * registry that hangs (a flaky link drops packets; nothing refuses the connection) would hold a
 * whole turn for the resolve's timeout. The daemon must not wait on it (offline first: at boot the
 * containers start at once), so with `waitMs` a check waits that long at most, then the turn goes
 * on with the last answer known and the check finishes in the background, calling `onLateAnswer`
 * when it brings news. Without `waitMs` (one-shot apply, plan) a check waits for its answer.
 */

export interface RemoteCheckHooks {
  onUp(): void;
  onDown(err: unknown): void;
}

interface Answer {
  digest: string;
  changed: boolean;
}

export class RemoteChecks {
  private readonly last = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<Answer | undefined>>();
  private readonly waitMs: number | undefined;
  private readonly onLateAnswer: (() => void) | undefined;

  constructor(opts: { waitMs?: number; onLateAnswer?: () => void } = {}) {
    this.waitMs = opts.waitMs;
    this.onLateAnswer = opts.onLateAnswer;
  }

  /** The digest `ref` points at: this check's answer, or (it is late) the last one known. */
  async check(ref: string, resolve: () => Promise<string>, hooks: RemoteCheckHooks): Promise<string | undefined> {
    let pending = this.inFlight.get(ref);
    if (!pending) {
      pending = resolve()
        .then(
          (digest): Answer => {
            hooks.onUp();
            const changed = this.last.get(ref) !== digest;
            this.last.set(ref, digest);
            return { digest, changed };
          },
          (err): undefined => {
            hooks.onDown(err);
            return undefined;
          },
        )
        .finally(() => this.inFlight.delete(ref));
      this.inFlight.set(ref, pending);
    }
    if (this.waitMs === undefined) return (await pending)?.digest;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(resolve, this.waitMs, 'late');
    });
    const first = await Promise.race([pending, late]);
    clearTimeout(timer);
    if (first !== 'late') return first?.digest;
    void pending.then((a) => {
      if (a?.changed) this.onLateAnswer?.();
    });
    return this.last.get(ref);
  }
}
