/**
 * The task monitor: notices task exits (watchExits: berth-shim writes `exit.json` in the container
 * dir; plus a poll as a fallback for missed events), records each exit once, applies the
 * restart policy and starts the new task when the backoff has passed. The clock and timers are
 * injected so tests can run the backoff without waiting.
 *
 * Exits of tasks that ended while no berth was running are found by the first check after start;
 * a backoff that was pending when berth died is resumed from `nextRestartAt`.
 */
import { isKind } from '../errors.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { watchExits, type ExitWatcher } from './exit-watch.ts';
import { decideRestart, type RestartDecision } from './restart-policy.ts';
import type { Runtime, ContainerStatus } from './runtime.ts';
import type { ExitStatus } from './state.ts';
import { systemClock, type Clock } from './clock.ts';

export { systemClock, type Clock };

export type MonitorEvent =
  | { type: 'exit'; name: string; exit: ExitStatus; decision: RestartDecision }
  | { type: 'restarted'; name: string; status: ContainerStatus }
  | { type: 'restart-failed'; name: string; error: unknown };

export interface MonitorOptions {
  runtime: Runtime;
  clock?: Clock;
  /** Poll fallback period (default 5 s); the poll also uses the injected clock. */
  pollIntervalMs?: number;
  /**
   * Apply the restart policy (default true). False: only record each exit once and report it
   * (`exit` events with the decision the policy would take), for a reconcile loop that plans
   * restarts itself.
   */
  applyPolicy?: boolean;
  /** Watch the filesystem for exit files (default true). */
  watch?: boolean;
  log?: Logger;
  onEvent?: (e: MonitorEvent) => void;
}

export class TaskMonitor {
  private readonly rt: Runtime;
  private readonly clock: Clock;
  private readonly pollMs: number;
  private readonly useWatch: boolean;
  private readonly applyPolicy: boolean;
  private readonly log: Logger;
  private readonly onEvent: (e: MonitorEvent) => void;
  private watcher?: ExitWatcher;
  private pollTimer?: unknown;
  private readonly restartTimers = new Map<string, unknown>();
  private checking?: Promise<void>;
  private again = false;
  private stopped = true;

  constructor(o: MonitorOptions) {
    this.rt = o.runtime;
    this.clock = o.clock ?? systemClock;
    this.pollMs = o.pollIntervalMs ?? 5000;
    this.useWatch = o.watch ?? true;
    this.applyPolicy = o.applyPolicy ?? true;
    this.log = o.log ?? silentLogger();
    this.onEvent = o.onEvent ?? (() => {});
  }

  /** Begin watching; runs a first check at once (adoption). */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.useWatch) {
      this.watcher = watchExits(
        this.rt.dir,
        () => void this.check(),
        (err) => this.log.warn({ err }, 'cannot watch for exits; polling only'),
      );
    }
    await this.check();
    this.schedulePoll();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.pollTimer !== undefined) this.clock.clearTimeout(this.pollTimer);
    for (const t of this.restartTimers.values()) this.clock.clearTimeout(t);
    this.restartTimers.clear();
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = this.clock.setTimeout(() => {
      void this.check().finally(() => this.schedulePoll());
    }, this.pollMs);
  }

  /** Look at every container once; coalesces concurrent calls. */
  check(): Promise<void> {
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.again = false;
        for (const st of await this.rt.list()) await this.checkOne(st).catch((err) => this.log.error({ err, container: st.name }, 'monitor'));
      } while (this.again);
    })().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOne(st: ContainerStatus): Promise<void> {
    const r = st.record;
    if (r.stopped || this.restartTimers.has(st.name)) return;
    if (st.state === 'exited' && st.exit && r.task && st.exit.taskId === r.task.id) {
      // A new exit: record it once, decide.
      const exit = st.exit;
      const decision = decideRestart({
        policy: r.spec.restartPolicy,
        exitCode: exit.exitCode,
        ranForMs: exit.ranForMs ?? Math.max(0, exit.exitedAtMs - exit.startedAtMs),
        streak: r.backoffStreak,
        lost: exit.lost,
      });
      const now = this.clock.now();
      await this.rt.updateRecord(st.name, (rec) => {
        rec.lastExit = exit;
        rec.task = undefined;
        rec.backoffStreak = decision.streak;
        rec.nextRestartAt = decision.restart && this.applyPolicy ? new Date(now + decision.delayMs).toISOString() : undefined;
        rec.restartDecision = decision.reason;
      });
      this.log.info({ container: st.name, exitCode: exit.exitCode, oomKilled: exit.oomKilled, decision: decision.reason }, 'task exited');
      this.onEvent({ type: 'exit', name: st.name, exit, decision });
      if (decision.restart && this.applyPolicy) this.scheduleRestart(st.name, decision.delayMs);
      return;
    }
    if (!r.task && r.nextRestartAt && this.applyPolicy) {
      // A backoff pending from before (this process or a previous berth): resume it.
      this.scheduleRestart(st.name, Math.max(0, Date.parse(r.nextRestartAt) - this.clock.now()));
    }
  }

  private scheduleRestart(name: string, delayMs: number): void {
    if (this.stopped) return;
    const t = this.clock.setTimeout(() => {
      void (async () => {
        try {
          const cur = await this.rt.readRecord(name);
          if (cur.stopped || cur.task) return; // stopped or already started by someone else meanwhile
          const status = await this.rt.start(name, { restart: true });
          this.onEvent({ type: 'restarted', name, status });
        } catch (err) {
          if (isKind(err, 'NotFound')) return; // deleted while waiting: nothing to restart
          this.log.error({ err, container: name }, 'restart failed');
          this.onEvent({ type: 'restart-failed', name, error: err });
        } finally {
          this.restartTimers.delete(name);
        }
      })();
    }, delayMs);
    this.restartTimers.set(name, t);
  }
}
