/**
 * One reconcile turn: load the desired state (or, if the manifests are broken, keep the last good
 * generation: Stalled, never half-applied), observe, plan, execute, then record what happened:
 * the generation, per-object status for `berth status`, events, metrics.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isKind } from '../errors.ts';
import { canonicalJson } from '../manifest/spec-hash.ts';
import { checkManifests } from '../manifest/load.ts';
import { formatProblem, type ManifestProblem } from '../manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../manifest/schema.ts';
import type { DesiredState } from '../manifest/types.ts';
import { statusUnchanged, type Generation, type ObjectRef, type ObjectState, type ObjectStatusInput } from '../metadata/metadata.ts';
import { RECONCILE_LOCK, withLock } from '../metadata/lock.ts';
import type { ReconcileDeps } from './deps.ts';
import { BackgroundPulls, executePlan, type StepOutcome } from './execute.ts';
import { BlobChecker } from './blob-check.ts';
import { RemoteChecks } from './remote-checks.ts';
import { observe, RegistryHealth } from './observe.ts';
import { discardRetired, putBackImageRecord } from './containers.ts';
import { desiredImages, plan } from './plan.ts';
import { updateLockHeld } from '../runtime/update-lock.ts';
import { updateGate } from './update-gate.ts';
import { secretsInUse } from '../manifest/secret-refs.ts';
import { judgeRollout, readHold, ROLLOUT_HOLD, type HealthVerdict } from './rollout.ts';
import { isChange, type ActualContainer, type ActualState, type Step } from './types.ts';

export interface PlanView {
  desired?: DesiredState;
  /**
   * Where the desired state came from: the manifests; the last applied generation (the manifests
   * are broken); the last confirmed one because the manifests' desired state was rolled back and is
   * not retried until it changes (`rolled-back`); or the generation `berth rollout undo` holds.
   */
  source: 'manifests' | 'last-applied' | 'none' | 'rolled-back' | 'held';
  /** Why a rollout chose another desired state than the manifests'. */
  sourceNote?: string;
  problems: ManifestProblem[];
  actual: ActualState;
  steps: Step[];
}

export interface TurnReport extends PlanView {
  generation?: Generation;
  outcomes: StepOutcome[];
  /** Nothing failed, waits or was blocked. */
  converged: boolean;
  durationMs: number;
  /** The rollout of the manifests' generation, when one is being confirmed or was just decided. */
  rollout?: RolloutReport;
  /** Another turn is needed at once (a rollout was just rolled back: the restore comes next). */
  again?: boolean;
}

export interface RolloutReport {
  generation: number;
  state: 'progressing' | 'confirmed' | 'rolledback';
  /** What is still being confirmed (progressing), or why it rolled back. */
  message: string;
  /** When a container can next be confirmed: the daemon wakes then. */
  wakeAt?: number;
}

/** How often a turn looks again at an update lock that holds an update off. */
export const UPDATE_LOCK_RECHECK_MS = 5_000;

/** The hash a generation records of its desired state (a rolled-back one is not retried until it changes). */
export function desiredHash(desired: DesiredState): string {
  return `sha256:${createHash('sha256')
    .update(canonicalJson(JSON.parse(JSON.stringify(desired))))
    .digest('hex')}`;
}

export interface ReconcilerOptions {
  /**
   * Re-hash each blob once, then whenever its file changed (the daemon: a corrupted blob is found and
   * fetched again). Without it (one-shot apply, plan) blobs are checked for presence and size only.
   */
  verifyBlobDigests?: boolean;
  /**
   * Wait at most this long for a registry to say where an `Always` tag points, then go on with the
   * last answer (the daemon: a hanging registry never holds a turn); `onLateAnswer` runs when a
   * late answer brings news. Without it each check waits for its answer (one-shot apply, plan).
   */
  remoteCheckWaitMs?: number;
  onLateAnswer?: () => void;
  manifests: string;
  allowEmpty?: boolean;
  /** Who holds the reconcile lock, for the message another process sees. */
  holder: string;
  onOutcome?: (o: StepOutcome) => void;
  /** Update even outside the update window and through an app's update lock (`berth apply --force`). */
  force?: boolean;
  /** The health probes' verdicts, per container (the daemon's and `berth apply`'s HealthMonitor). */
  probes?: (name: string) => { status: HealthVerdict; output?: string; since: number } | undefined;
  /** How long to wait for another process's turn to finish (default 0: fail at once, naming it). */
  lockWaitMs?: number;
  /**
   * Run pulls beyond their turn (the daemon), stopping them on this signal; `onPullSettled` is
   * called when one ends (after its outcome is logged and recorded), to wake the loop.
   */
  backgroundPulls?: { signal: AbortSignal; onPullSettled: (o: StepOutcome) => void };
}

export class Reconciler {
  readonly health = new RegistryHealth();
  private readonly blobs: BlobChecker;
  private readonly remote: RemoteChecks;
  private readonly background: BackgroundPulls | undefined;
  private validator: DocumentValidator | undefined;
  private lastProblems = '';
  /** Devices seen missing under running containers (`name\0path`), so each loss is told once. */
  private devicesGone = new Set<string>();

  private readonly deps: ReconcileDeps;
  private readonly opts: ReconcilerOptions;

  constructor(deps: ReconcileDeps, opts: ReconcilerOptions) {
    this.deps = deps;
    this.opts = opts;
    this.blobs = new BlobChecker({ rehash: opts.verifyBlobDigests ?? false });
    this.remote = new RemoteChecks({ waitMs: opts.remoteCheckWaitMs, onLateAnswer: opts.onLateAnswer });
    const bg = opts.backgroundPulls;
    this.background =
      bg &&
      new BackgroundPulls(bg.signal, (o) => {
        this.logOutcome(o);
        this.opts.onOutcome?.(o);
        bg.onPullSettled(o);
      });
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** The desired state to converge to: the manifests if valid, else the last applied generation. */
  async desired(signal: AbortSignal): Promise<Pick<PlanView, 'desired' | 'source' | 'problems'>> {
    this.validator ??= await createDocumentValidator(signal);
    const check = await checkManifests(this.opts.manifests, {
      signal,
      validator: this.validator,
      allowEmpty: this.opts.allowEmpty,
      device: this.deps.config.device,
    }).catch((err: Error): { problems: ManifestProblem[]; state?: DesiredState } => {
      if (signal.aborted) throw err; // berth is stopping: that says nothing about the manifests
      return { problems: [{ place: { file: this.opts.manifests }, message: err.message }] };
    });
    if (check.state) return { desired: check.state, source: 'manifests', problems: [] };
    const last = this.deps.metadata.currentGeneration();
    if (last) return { desired: last.desired as DesiredState, source: 'last-applied', problems: check.problems };
    return { source: 'none', problems: check.problems };
  }

  /**
   * The desired state a rollout allows: the manifests', unless `berth rollout undo` holds another
   * generation (until the manifests change), or the manifests ask for exactly what was rolled back.
   */
  private rolloutDesired(
    d: Pick<PlanView, 'desired' | 'source' | 'problems'>,
  ): Pick<PlanView, 'desired' | 'source' | 'problems' | 'sourceNote'> & { rejected?: DesiredState } {
    if (d.source !== 'manifests' || !d.desired) return d;
    const { metadata } = this.deps;
    const hash = desiredHash(d.desired);
    const hold = readHold(metadata.getSetting(ROLLOUT_HOLD));
    if (hold && hold.manifestsHash === hash) {
      const held = metadata.getGeneration(hold.generation);
      if (held) return { ...d, desired: held.desired as DesiredState, source: 'held', sourceNote: `held at generation ${held.id} by berth rollout undo` };
    }
    // A desired state once rolled back is not tried again by itself, even after other changes (as
    // long as the metadata keeps its generation: the last 50).
    const rejected = metadata.rolledBackGeneration(hash);
    const confirmed = metadata.currentGeneration();
    if (rejected && confirmed) {
      return {
        ...d,
        desired: confirmed.desired as DesiredState,
        source: 'rolled-back',
        rejected: rejected.desired as DesiredState,
        sourceNote: `generation ${rejected.id} was rolled back (${rejected.message ?? 'no reason recorded'}); running generation ${confirmed.id} until the manifests change or berth rollout retry`,
      };
    }
    return d;
  }

  /** Wait for the pulls that outlived their turns to settle (they stop on the daemon's signal). */
  drain(): Promise<void> {
    return this.background?.drain() ?? Promise.resolve();
  }

  /** Observe and plan without changing anything (`berth plan`). */
  async plan(signal: AbortSignal): Promise<PlanView> {
    const loaded = await this.desired(signal);
    const observeFor = (desired: DesiredState) => observe(this.deps, desired, { health: this.health, blobs: this.blobs, remote: this.remote, signal });
    let actual = await observeFor(loaded.desired ?? { containers: [], images: [], volumes: [] });
    if (loaded.source === 'manifests' && loaded.desired) {
      const previous = (this.deps.metadata.latestGeneration()?.desired as DesiredState | undefined)?.imagePins;
      loaded.desired = { ...loaded.desired, imagePins: imagePins(loaded.desired, actual, previous) };
    }
    const d = this.rolloutDesired(loaded);
    const desired = d.desired ?? { containers: [], images: [], volumes: [] };
    if (d.desired !== loaded.desired) {
      if (!sameImages(desired, loaded.desired)) actual = await observeFor(desired);
      // A tag the rolled-back generation moved to is not an update to take again.
      for (const img of actual.images) {
        if (img.remoteDigest !== undefined && d.rejected?.imagePins?.[img.ref] === img.remoteDigest && desired.imagePins?.[img.ref] !== img.remoteDigest)
          delete img.remoteDigest;
      }
    }
    for (const c of actual.containers) {
      const verdict = c.state === 'running' ? this.opts.probes?.(c.name) : undefined;
      if (verdict?.status === 'unhealthy') c.unhealthySince = verdict.since;
      if (verdict) c.health = verdict.status;
    }
    if (!d.desired) return { ...d, actual, steps: [] };
    let steps = plan(desired, actual, this.now());
    // The update gate (window, the apps' update locks) matters only to a plan that would stop a
    // running container: an idle turn reads no lock. Such a plan is made again with the holds.
    const stopping = steps.flatMap((s) => (s.kind === 'recreate' || s.kind === 'restore' || s.kind === 'remove' ? [s.container] : []));
    const holds = await this.updateHolds(
      actual.containers.filter((c) => c.state === 'running' && stopping.includes(c.name)),
      signal,
    );
    if (Object.keys(holds).length) {
      actual.updateHolds = holds;
      steps = plan(desired, actual, this.now());
    }
    return { ...d, actual, steps };
  }

  /** Which running containers an update may not stop now: the update window, the apps' update locks. */
  private async updateHolds(running: ActualContainer[], signal: AbortSignal): Promise<NonNullable<ActualState['updateHolds']>> {
    const { config, log } = this.deps;
    const now = this.now();
    const holds: NonNullable<ActualState['updateHolds']> = {};
    for (const c of running) {
      const lock = await updateLockHeld(config.root, c.name, signal, now);
      const gate = updateGate(
        { windows: config.updates.windows, maxLockHoldMs: config.updates.maxLockHoldMs, force: this.opts.force },
        { lockHeldSinceMs: lock.held ? (lock.since?.getTime() ?? now) : undefined },
        now,
      );
      // A held lock's release cannot be watched (/proc/locks has no events): look again soon, so a
      // staged update goes ahead within seconds of the release rather than at the next resync.
      if (!gate.allowed) {
        const until = gate.until ?? (lock.held ? now + UPDATE_LOCK_RECHECK_MS : undefined);
        holds[c.name] = { reason: gate.reason, ...(until !== undefined ? { until } : {}) };
      } else if (gate.override) log.warn({ container: c.name }, `${c.name}: ${gate.override}: updating anyway`);
    }
    return holds;
  }

  async turn(signal: AbortSignal): Promise<TurnReport> {
    // A turn that would change nothing (the resync of a steady device, the recheck of a held update
    // lock) is planned and ends without the lock, and writes nothing: the lock's own two commits
    // were all an idle daemon wrote (about 80 KiB a minute, issue 14). Any other turn takes
    // the lock and plans again under it if another process wrote meanwhile (it may have acted).
    const { metadata } = this.deps;
    const started = performance.now();
    const version = metadata.dataVersion();
    const view = await this.plan(signal);
    if (view.steps.every((s) => s.kind === 'wait')) {
      // What executePlan makes of a wait: nothing but its outcome.
      const outcomes = view.steps.map((step): StepOutcome => ({ step, result: 'waiting', message: step.reason, ms: 0 }));
      const generation = metadata.latestGeneration();
      if (generation && this.changesNothing(view, generation, outcomes)) {
        for (const o of outcomes) {
          this.logOutcome(o);
          this.opts.onOutcome?.(o);
        }
        this.lastProblems = '';
        this.recordDevicesGone(view.desired!, view.actual); // none is new: this only forgets those back
        return this.report(view, started, { generation, outcomes, converged: outcomes.length === 0 });
      }
    }
    // One reconciler at a time per root (`berth apply` and a `berth run` turn): the lock is renewed
    // while the turn works, and taken over at once from a holder that died.
    const lock = { holder: this.opts.holder, waitMs: this.opts.lockWaitMs ?? 0, signal };
    return withLock(metadata, RECONCILE_LOCK, lock, (s) => this.turnLocked(s, started, metadata.dataVersion() === version ? view : undefined));
  }

  /**
   * Whether a turn on `view`, whose steps only wait (`outcomes`), would record nothing either: the
   * manifests are valid and are the latest generation, which waits on nothing a turn decides (it is
   * applied; or failed, or pending and not ready to confirm or roll back, while its steps wait), no
   * rollout hold ends, no device went missing, and every status already says what it would write.
   * Reads only.
   */
  private changesNothing(view: PlanView, latest: Generation, outcomes: StepOutcome[]): boolean {
    const { metadata } = this.deps;
    const desired = view.desired;
    if (!desired || view.source !== 'manifests' || !sameDesired(latest, desired) || metadata.getSetting(ROLLOUT_HOLD) !== undefined) return false;
    const waiting = outcomes.length > 0;
    const settled =
      latest.result === 'applied' ||
      (waiting && latest.result === 'failed') ||
      (waiting && latest.result === 'pending' && this.judge(latest, desired, view.actual).verdict === 'watch');
    if (!settled || [...this.devicesMissing(desired, view.actual)].some((key) => !this.devicesGone.has(key))) return false;
    const statuses = [this.manifestsStatus([], view.source), ...this.statuses(desired, view.actual, outcomes)];
    const stored = new Map(metadata.listStatus().flatMap((s) => (s.kind === 'Manifests' || DESIRED_KINDS.includes(s.kind) ? [[refKey(s), s]] : [])));
    return (
      stored.size === statuses.length &&
      statuses.every((s) => {
        const old = stored.get(refKey(s));
        return old !== undefined && statusUnchanged(old, s);
      })
    );
  }

  private report(view: PlanView, started: number, r: Pick<TurnReport, 'generation' | 'outcomes' | 'converged' | 'rollout' | 'again'>): TurnReport {
    const durationMs = performance.now() - started;
    this.deps.metrics?.reconcileDuration.observe(durationMs / 1000);
    if (this.deps.metrics) this.deps.metrics.lastTurnAt = new Date();
    return { ...view, ...r, durationMs };
  }

  /** The turn, holding the lock; `planned` is the view made before it, if still true. */
  private async turnLocked(signal: AbortSignal, started: number, planned: PlanView | undefined): Promise<TurnReport> {
    const { metadata } = this.deps;
    let view = planned ?? (await this.plan(signal));
    this.recordManifestProblems(view.problems, view.source);
    const hold = readHold(metadata.getSetting(ROLLOUT_HOLD));
    if (hold && view.source === 'manifests') metadata.deleteSetting(ROLLOUT_HOLD); // the manifests changed: the hold ends
    let generation = view.desired && view.source === 'manifests' ? this.generationFor(view.desired) : metadata.currentGeneration();
    const confirmed = metadata.currentGeneration();
    // A rollout is under way when the manifests' generation is newer than the confirmed one.
    const inRollout = (g: Generation | undefined): g is Generation =>
      view.source === 'manifests' &&
      g !== undefined &&
      (g.result === 'pending' || g.result === 'progressing') &&
      confirmed !== undefined &&
      confirmed.id < g.id;

    let rollout: RolloutReport | undefined;
    if (inRollout(generation) && view.desired) {
      const verdict = this.judge(generation, view.desired, view.actual);
      if (verdict.verdict === 'rollback') {
        rollout = this.rollBack(generation, verdict.reason);
        view = await this.plan(signal); // now the confirmed generation's desired state: restore it
        generation = metadata.currentGeneration();
      } else if (verdict.verdict === 'confirm') {
        rollout = await this.confirm(generation, signal);
        generation = metadata.currentGeneration();
      } else if (generation.result === 'progressing') {
        const wake = verdict.waiting.flatMap((w) => (w.until !== undefined ? [w.until] : []));
        rollout = { generation: generation.id, state: 'progressing', message: verdict.waiting.map((w) => w.why).join('; ') || 'confirming' };
        if (wake.length) rollout.wakeAt = Math.min(...wake);
      }
    }

    // Decrypted into the tmpfs before containers are made or started; one that cannot be decrypted
    // holds back only its containers (the plan made them wait), so nothing here stops the turn.
    if (view.desired) await this.deps.secrets?.provide(view.desired, signal).catch((err) => this.deps.log.error({ err }, 'cannot provide the secrets'));
    const outcomes = await executePlan(view.steps, {
      deps: this.deps,
      actual: view.actual,
      desired: view.desired,
      generation: generation?.id ?? 0,
      health: this.health,
      signal,
      onOutcome: (o) => {
        this.logOutcome(o);
        this.opts.onOutcome?.(o);
      },
      background: this.background,
      retireReplaced: inRollout(generation),
    });
    const converged = view.problems.length === 0 && outcomes.every((o) => o.result === 'ok');
    if (view.desired) metadata.transaction(() => this.recordStatus(view.desired!, view.actual, outcomes));
    if (view.desired) this.recordDevicesGone(view.desired, view.actual);
    let finalGeneration = generation;
    let again = false;
    if (generation && view.source === 'manifests' && (generation.result === 'pending' || generation.result === 'failed')) {
      const changed = outcomes.filter((o) => o.result === 'ok' && CHANGES_CONTAINER.has(o.step.kind)).map((o) => (o.step as { container: string }).container);
      if (changed.length) finalGeneration = metadata.addChangedContainers(generation.id, changed);
      const failed = outcomes.filter((o) => o.result === 'failed');
      const fatal = failed.find(failsRollout);
      if (inRollout(finalGeneration) && fatal) {
        rollout = this.rollBack(finalGeneration, `${fatal.step.reason}: ${fatal.message}`);
        finalGeneration = metadata.currentGeneration();
        again = true;
      } else if (converged && inRollout(finalGeneration) && finalGeneration.changed.length > 0) {
        finalGeneration = metadata.markProgressing(finalGeneration.id);
        rollout = { generation: finalGeneration.id, state: 'progressing', message: `confirming ${finalGeneration.changed.join(', ')}`, wakeAt: this.now() };
      } else if (converged && inRollout(finalGeneration)) {
        // Nothing to prove (only removals, or changes that need no new container): confirmed now.
        rollout = await this.confirm(finalGeneration, signal);
        finalGeneration = metadata.currentGeneration();
      } else if (converged) finalGeneration = metadata.setGenerationResult(finalGeneration!.id, 'applied');
      else if (failed.length && !inRollout(finalGeneration)) {
        finalGeneration = metadata.setGenerationResult(finalGeneration!.id, 'failed', failed.map((o) => `${o.step.reason}: ${o.message}`).join('; '));
      }
    }
    if (view.source === 'rolled-back' && !rollout) {
      const latest = metadata.latestGeneration();
      if (latest?.result === 'rolledback') rollout = { generation: latest.id, state: 'rolledback', message: latest.message ?? '' };
    }
    this.recordRollout(rollout, view);
    return this.report(view, started, { generation: finalGeneration, outcomes, converged, ...(rollout ? { rollout } : {}), ...(again ? { again } : {}) });
  }

  /** How the rollout of generation `g` stands, before this turn's steps. */
  private judge(g: Generation, desired: DesiredState, actual: ActualState): ReturnType<typeof judgeRollout> {
    return judgeRollout({
      generation: g,
      desired,
      containers: actual.containers,
      health: (name) => this.opts.probes?.(name),
      failedSteps: new Map(),
      now: this.now(),
    });
  }

  /** Give up on generation `g`: the last confirmed one comes back (by the next plan). */
  private rollBack(g: Generation, reason: string): RolloutReport {
    const { metadata, log, metrics } = this.deps;
    const confirmed = metadata.currentGeneration();
    metadata.transaction(() => {
      metadata.setGenerationResult(g.id, 'rolledback', reason);
      // Image records the rollout moved (a tag that moved) point back at what the kept containers
      // ran, so the next plan sees those containers as wanted and restores them.
      for (const r of metadata.listRetiredContainers()) putBackImageRecord(metadata, r);
    });
    const message = `generation ${g.id} rolled back to generation ${confirmed?.id ?? '-'}: ${reason}`;
    metadata.addEvent({ object: { kind: 'Generation', name: String(g.id) }, type: 'Warning', reason: 'RolledBack', message });
    log.warn({ generation: g.id, to: confirmed?.id }, message);
    metrics?.rollouts.inc({ result: 'rolledback' });
    return { generation: g.id, state: 'rolledback', message: reason };
  }

  /** Generation `g` proved itself: it becomes the one to fall back to, and what it replaced goes. */
  private async confirm(g: Generation, signal: AbortSignal): Promise<RolloutReport> {
    const { metadata, log, metrics } = this.deps;
    metadata.setGenerationResult(g.id, 'applied');
    const retired = metadata.listRetiredContainers().length;
    await discardRetired(this.deps).catch((err) => log.warn({ err }, 'cannot remove the containers a confirmed rollout replaced; GC will'));
    const message = `generation ${g.id} confirmed (${g.changed.join(', ')})`;
    metadata.addEvent({ object: { kind: 'Generation', name: String(g.id) }, type: 'Normal', reason: 'Confirmed', message });
    log.info({ generation: g.id }, message);
    metrics?.rollouts.inc({ result: 'confirmed' });
    if (retired) {
      const { collect } = await import('./execute.ts');
      await collect(this.deps, signal).catch((err) => log.warn({ err }, 'garbage collection after a confirmed rollout failed'));
    }
    return { generation: g.id, state: 'confirmed', message };
  }

  /**
   * A device unplugged from under a running container is an event, once per disappearance (the
   * container keeps running: whether it copes is the app's business; its node inside is stale).
   */
  private recordDevicesGone(desired: DesiredState, actual: ActualState): void {
    const gone = this.devicesMissing(desired, actual);
    for (const doc of desired.containers) {
      for (const d of doc.spec.devices ?? []) {
        const key = `${doc.metadata.name}\0${d.path}`;
        if (!gone.has(key) || this.devicesGone.has(key)) continue;
        this.deps.metadata.addEvent({
          object: { kind: 'Container', name: doc.metadata.name },
          type: 'Warning',
          reason: 'DeviceGone',
          message: `${doc.metadata.name}: device ${d.path} disappeared while the container runs`,
        });
        this.deps.log.warn({ container: doc.metadata.name, device: d.path }, 'device disappeared while the container runs');
      }
    }
    this.devicesGone = gone;
  }

  /** The devices missing under running containers, as `name\0path`. */
  private devicesMissing(desired: DesiredState, actual: ActualState): Set<string> {
    const gone = new Set<string>();
    for (const doc of desired.containers) {
      const running = actual.containers.find((c) => c.name === doc.metadata.name)?.state === 'running';
      for (const d of running ? (doc.spec.devices ?? []) : []) if (!existsSync(d.path)) gone.add(`${doc.metadata.name}\0${d.path}`);
    }
    return gone;
  }

  /** The `Rollout` status row, written only when it changes. */
  private recordRollout(rollout: RolloutReport | undefined, view: PlanView): void {
    const { metadata } = this.deps;
    const object = { kind: 'Rollout', name: 'current' };
    const next = rollout
      ? {
          state: rollout.state === 'progressing' ? ('Reconciling' as const) : rollout.state === 'confirmed' ? ('Ready' as const) : ('Stalled' as const),
          reason: rollout.state === 'progressing' ? 'Progressing' : rollout.state === 'confirmed' ? 'Confirmed' : 'RolledBack',
          message: `generation ${rollout.generation}: ${rollout.message}`,
        }
      : view.source === 'held'
        ? { state: 'Stalled' as const, reason: 'Held', message: view.sourceNote ?? 'held' }
        : undefined;
    if (!next) return;
    const old = metadata.getStatus(object.kind, object.name);
    if (old && old.state === next.state && old.reason === next.reason && old.message === next.message) return;
    metadata.setStatus({ ...object, ...next });
  }

  /** The generation for this desired state: the latest if it asked for the same, else a new pending one. */
  private generationFor(desired: DesiredState): Generation {
    const { metadata } = this.deps;
    const latest = metadata.latestGeneration();
    if (latest && sameDesired(latest, desired)) return latest;
    const g = metadata.addGeneration({ revision: desired.revision, desired, result: 'pending', desiredHash: desiredHash(desired) });
    metadata.addEvent({
      object: { kind: 'Generation', name: String(g.id) },
      type: 'Normal',
      reason: 'NewGeneration',
      message: `desired state changed${desired.revision ? ` (revision ${desired.revision})` : ''}`,
    });
    return g;
  }

  private recordManifestProblems(problems: ManifestProblem[], source: PlanView['source']): void {
    const { metadata, log } = this.deps;
    const object = { kind: 'Manifests', name: this.opts.manifests };
    for (const s of metadata.listStatus()) if (s.kind === 'Manifests' && s.name !== object.name) metadata.deleteStatus(s.kind, s.name);
    const text = problems.map(formatProblem).join('\n');
    metadata.setStatus(this.manifestsStatus(problems, source));
    if (problems.length && text !== this.lastProblems) {
      metadata.addEvent({ object, type: 'Warning', reason: 'InvalidManifests', message: text });
      log.error({ problems: problems.map(formatProblem) }, `manifests are invalid; ${keeping(source)}`);
    }
    this.lastProblems = text;
  }

  private manifestsStatus(problems: ManifestProblem[], source: PlanView['source']): ObjectStatusInput {
    const object = { kind: 'Manifests', name: this.opts.manifests };
    if (problems.length === 0) return { ...object, state: 'Ready', reason: 'Valid', message: 'manifests are valid' };
    return { ...object, state: 'Stalled', reason: 'InvalidManifests', message: `${problems.map(formatProblem).join('\n')}\n(${keeping(source)})` };
  }

  private logOutcome(o: StepOutcome): void {
    const { log, metadata } = this.deps;
    if (o.result === 'ok') log.info({ step: o.step.id, ms: Math.round(o.ms) }, `${o.step.reason}: ${o.message}`);
    else if (o.result === 'failed') log.error({ step: o.step.id }, `${o.step.reason}: FAILED: ${o.message}`);
    else log.debug({ step: o.step.id }, `${o.step.reason}: ${o.message}`);
    if (o.result === 'ok' || o.result === 'failed') {
      metadata.addEvent({
        object: objectOf(o.step),
        type: o.result === 'ok' ? 'Normal' : 'Warning',
        reason: eventReason(o.step, o.result),
        message: `${o.step.reason}: ${o.message}`,
      });
    }
  }

  private recordStatus(desired: DesiredState, actual: ActualState, outcomes: StepOutcome[]): void {
    const { metadata } = this.deps;
    const statuses = this.statuses(desired, actual, outcomes);
    for (const s of statuses) metadata.setStatus(s);
    const wanted = new Set(statuses.map(refKey));
    for (const s of metadata.listStatus()) if (DESIRED_KINDS.includes(s.kind) && !wanted.has(refKey(s))) metadata.deleteStatus(s.kind, s.name);
  }

  /** The status of each object of the desired state after a turn with these outcomes. */
  private statuses(desired: DesiredState, actual: ActualState, outcomes: StepOutcome[]): ObjectStatusInput[] {
    const byObject = new Map<string, StepOutcome[]>();
    for (const o of outcomes) {
      const key = refKey(objectOf(o.step));
      byObject.set(key, [...(byObject.get(key) ?? []), o]);
    }
    const statuses: ObjectStatusInput[] = [];
    const put = (object: ObjectRef, idle: { reason: string; message: string; state?: ObjectState }) => {
      const mine = byObject.get(refKey(object)) ?? [];
      const worst = mine.find((o) => o.result === 'failed') ?? mine.find((o) => o.result !== 'ok');
      let state: ObjectState = idle.state ?? 'Ready';
      let reason = idle.reason;
      let message = idle.message;
      if (worst?.result === 'failed') [state, reason, message] = ['Stalled', 'StepFailed', `${worst.step.reason}: ${worst.message}`];
      else if (worst) [state, reason, message] = ['Reconciling', worst.result === 'waiting' ? 'Waiting' : 'Blocked', worst.message];
      else if (mine.length) [reason, message] = ['Applied', mine.map((o) => o.message).join('; ')];
      statuses.push({ ...object, state, reason, message, ...(state === 'Ready' ? { lastAppliedRevision: desired.revision ?? null } : {}) });
    };
    for (const img of desired.images) put({ kind: 'Image', name: img.metadata.name }, { reason: 'Present', message: img.spec.ref });
    for (const v of desired.volumes) put({ kind: 'Volume', name: v.metadata.name }, { reason: 'Present', message: 'exists' });
    for (const s of secretsInUse(desired)) {
      const problem = actual.secretProblems?.[s.metadata.name];
      put(
        { kind: 'Secret', name: s.metadata.name },
        problem ? { state: 'Stalled', reason: 'CannotDecrypt', message: problem } : { reason: 'Decrypted', message: 'decrypted on this device' },
      );
    }
    for (const c of desired.containers) {
      const a = actual.containers.find((x) => x.name === c.metadata.name);
      const health = a?.state === 'running' ? this.opts.probes?.(a.name)?.status : undefined;
      const message = a
        ? `${a.state}${a.state === 'exited' && a.exitCode !== undefined ? ` (exit code ${a.exitCode}${a.oomKilled ? ', OOM-killed' : ''})` : ''}${health ? ` (${health})` : ''}`
        : 'absent';
      put({ kind: 'Container', name: c.metadata.name }, { reason: 'UpToDate', message });
    }
    return statuses;
  }
}

/**
 * The digest each `pullPolicy: Always` image points to: the registry's answer; while it does not
 * answer, what the latest generation pinned (an unreachable registry is no new desired state);
 * else what is present.
 */
function imagePins(desired: DesiredState, actual: ActualState, previous: Record<string, string> | undefined): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const want of desiredImages(desired)) {
    if (want.pullPolicy !== 'Always') continue;
    const a = actual.images.find((i) => i.ref === want.ref);
    const digest = a?.remoteDigest ?? previous?.[want.ref] ?? a?.targetDigest;
    if (digest !== undefined) pins[want.ref] = digest;
  }
  return pins;
}

/** Whether generation `g` asked for exactly this desired state. */
function sameDesired(g: Generation, desired: DesiredState): boolean {
  return canonicalJson(g.desired) === canonicalJson(JSON.parse(JSON.stringify(desired)));
}

/** The kinds of status a turn keeps for the objects of the desired state (and deletes when they go). */
const DESIRED_KINDS = ['Image', 'Volume', 'Container', 'Secret'];

function keeping(source: PlanView['source']): string {
  return source === 'last-applied' ? 'the last applied generation keeps running' : 'nothing has been applied yet';
}

function sameImages(a: DesiredState, b: DesiredState | undefined): boolean {
  const refs = (d: DesiredState | undefined) => JSON.stringify((d ? desiredImages(d) : []).map((i) => [i.ref, i.pullPolicy, i.platform]).sort());
  return refs(a) === refs(b);
}

/** Steps that change what runs in a container: a rollout must confirm each. */
const CHANGES_CONTAINER = new Set<Step['kind']>(['create', 'recreate', 'restore']);

/**
 * A failure that means the rollout cannot succeed: a container could not be made (bad command,
 * user, bundle...), or its image does not exist. An unreachable registry only waits.
 */
function failsRollout(o: StepOutcome): boolean {
  if (CHANGES_CONTAINER.has(o.step.kind)) return !isKind(o.error, 'Aborted') && !isKind(o.error, 'Unavailable');
  if (o.step.kind === 'pull') return isKind(o.error, 'NotFound') || isKind(o.error, 'InvalidArgument') || isKind(o.error, 'Unimplemented');
  return false;
}

function refKey(o: ObjectRef): string {
  return `${o.kind}/${o.name}`;
}

export function objectOf(step: Step): ObjectRef {
  switch (step.kind) {
    case 'pull':
      return { kind: 'Image', name: step.name };
    case 'create-volume':
      return { kind: 'Volume', name: step.volume };
    case 'gc':
      return { kind: 'GC', name: 'gc' };
    case 'wait':
      return { kind: step.id.startsWith('wait:image:') ? 'Image' : 'Container', name: step.object };
    default:
      return { kind: 'Container', name: step.container };
  }
}

function eventReason(step: Step, result: 'ok' | 'failed'): string {
  if (result === 'failed') return 'Failed';
  switch (step.kind) {
    case 'pull':
      return step.repair ? 'Repaired' : 'Pulled';
    case 'create':
      return step.repair ? 'Repaired' : 'Created';
    case 'start':
      return 'Restarted';
    case 'recreate':
      return 'Recreated';
    case 'restore':
      return 'Restored';
    case 'remove':
      return 'Removed';
    case 'create-volume':
      return 'Created';
    case 'gc':
      return 'GarbageCollected';
    case 'wait':
      return 'Waiting';
  }
}

export { isChange };
