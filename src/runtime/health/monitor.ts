/**
 * The health monitor: probes each watched container's current task every `interval` (the first
 * probe one interval after the task started, as Docker does), keeps its HealthState, records it in
 * health.json when something visible changed, and reports every status change. It decides nothing:
 * restarting an unhealthy container or rolling back is the caller's (onChange).
 */
import { isKind } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { ExecOptions, ExecResult } from '../exec.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { ContainerRecord } from '../state.ts';
import { writeHealthFile } from './health-file.ts';
import { afterProbe, startingHealth, visiblyChanged, type HealthState } from './health-state.ts';
import type { Healthcheck } from './healthcheck.ts';
import { probeOnce, type ProbeTarget } from './probe.ts';

/** What the monitor needs of the Runtime. */
export interface HealthRuntime {
  readonly root: string;
  exec(name: string, opts: ExecOptions): Promise<ExecResult>;
  readRecord(name: string): Promise<ContainerRecord>;
}

export interface HealthMonitorOptions {
  runtime: HealthRuntime;
  log: Logger;
  clock?: Clock;
  /** Called on every status change (starting → healthy → unhealthy …), after health.json is written. */
  onChange?: (name: string, state: HealthState) => void;
  /** Records the state (default: health.json); returns false if the container is gone. */
  record?: (root: string, name: string, state: HealthState) => Promise<boolean>;
}

interface Watched {
  check: Healthcheck;
  checkKey: string;
  /** The network namespace to make http and tcp probes from (a container on networks). */
  netns?: string;
  state: HealthState;
  /** The state as last recorded on disk. */
  recorded?: HealthState;
  timer?: unknown;
  /** Aborts the probe in flight when the watch ends or is replaced. */
  controller: AbortController;
  probing?: Promise<void>;
}

export class HealthMonitor {
  private readonly rt: HealthRuntime;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly onChange: (name: string, state: HealthState) => void;
  private readonly record: (root: string, name: string, state: HealthState) => Promise<boolean>;
  private readonly watched = new Map<string, Watched>();
  /** Pending health.json writes, one chain per container so they land in order. */
  private readonly writes = new Map<string, Promise<void>>();
  private closed = false;

  constructor(o: HealthMonitorOptions) {
    this.rt = o.runtime;
    this.log = o.log;
    this.clock = o.clock ?? systemClock;
    this.onChange = o.onChange ?? (() => {});
    this.record = o.record ?? writeHealthFile;
  }

  /**
   * Probe `name`'s task that started at `taskStartedAtMs` with `check` (http and tcp from inside
   * `netns` when given). Calling it again for the same task and check changes nothing; a new task
   * (or check) starts over: `starting`, start period.
   */
  watch(name: string, check: Healthcheck, taskStartedAtMs: number, netns?: string): void {
    if (this.closed) return;
    const checkKey = JSON.stringify([check, netns]);
    const cur = this.watched.get(name);
    if (cur && cur.checkKey === checkKey && cur.state.taskStartedAtMs === taskStartedAtMs) return;
    if (cur) this.stop(cur);
    const now = this.clock.now();
    const w: Watched = {
      check,
      checkKey,
      ...(netns !== undefined ? { netns } : {}),
      state: startingHealth(check, taskStartedAtMs, now),
      controller: new AbortController(),
    };
    this.watched.set(name, w);
    this.save(name, w);
    this.onChange(name, w.state);
    this.schedule(name, w, Math.max(0, taskStartedAtMs + check.intervalMs - now));
  }

  /** Stop probing `name` (its task ended, or it is being removed). Its health.json stays. */
  unwatch(name: string): void {
    const w = this.watched.get(name);
    if (!w) return;
    this.stop(w);
    this.watched.delete(name);
  }

  /** The containers being watched. */
  names(): string[] {
    return [...this.watched.keys()];
  }

  /** The current health of a watched container. */
  get(name: string): HealthState | undefined {
    const s = this.watched.get(name)?.state;
    return s && { ...s };
  }

  /** Stop every probe (killing any in flight) and wait for them and for pending writes. */
  async close(): Promise<void> {
    this.closed = true;
    const probing = [...this.watched.values()].map((w) => {
      this.stop(w);
      return w.probing;
    });
    this.watched.clear();
    await Promise.all(probing);
    await Promise.all(this.writes.values());
  }

  private stop(w: Watched): void {
    if (w.timer !== undefined) this.clock.clearTimeout(w.timer);
    w.timer = undefined;
    w.controller.abort();
  }

  private schedule(name: string, w: Watched, delayMs: number): void {
    w.timer = this.clock.setTimeout(() => {
      w.timer = undefined;
      w.probing = this.probe(name, w)
        .catch((err) => this.log.error({ err, container: name }, 'health check failed to run'))
        .finally(() => (w.probing = undefined));
    }, delayMs);
  }

  private async probe(name: string, w: Watched): Promise<void> {
    const current = () => this.watched.get(name) === w && !w.controller.signal.aborted;
    let network: 'host' | 'none' = 'host';
    try {
      network = (await this.rt.readRecord(name)).network;
    } catch (err) {
      if (!isKind(err, 'NotFound')) this.log.warn({ err, container: name }, 'health check: cannot read the container');
    }
    const target: ProbeTarget = {
      name,
      network,
      ...(w.netns !== undefined ? { netns: w.netns } : {}),
      exec: (args, opts) => this.rt.exec(name, { args, ...opts }),
    };
    const startedAt = this.clock.now();
    const result = await probeOnce(w.check, target, w.controller.signal);
    if (!current()) return;
    const prev = w.state;
    w.state = afterProbe(prev, result, w.check, this.clock.now());
    if (visiblyChanged(w.recorded, w.state)) this.save(name, w);
    if (w.state.status !== prev.status) {
      this.log.info({ container: name, health: w.state.status, failingStreak: w.state.failingStreak, output: w.state.output }, 'health changed');
      this.onChange(name, { ...w.state });
    }
    this.schedule(name, w, Math.max(0, startedAt + w.check.intervalMs - this.clock.now()));
  }

  private save(name: string, w: Watched): void {
    const state = { ...w.state };
    w.recorded = state;
    const prev = this.writes.get(name) ?? Promise.resolve();
    const next = prev
      .then(() => this.record(this.rt.root, name, state))
      .then(
        () => {},
        (err) => this.log.warn({ err, container: name }, 'cannot record health'),
      );
    this.writes.set(name, next);
    void next.then(() => {
      if (this.writes.get(name) === next) this.writes.delete(name);
    });
  }
}
