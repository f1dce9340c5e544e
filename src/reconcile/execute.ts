/**
 * Executing a plan: every step runs on a p-queue as soon as the steps in its `after` have
 * succeeded (independent steps in parallel, dependent ones in order). A step whose prerequisite
 * failed or waits is not run, and says which one held it. Each outcome is timed and counted.
 */
import { mkdir } from 'node:fs/promises';
import PQueue from 'p-queue';
import { unpackSettingsFromConfig } from '../diff/layer-applier.ts';
import { isKind } from '../errors.ts';
import { formatBytes } from '../format-bytes.ts';
import { collectGarbage, type GcReport } from '../gc/collect.ts';
import { ensureFreeSpace } from '../gc/free-space.ts';
import { importImages, IMPORTED_FROM_LABEL } from '../images/import.ts';
import { pullUnpacker } from '../images/unpack.ts';
import { unpackStoredImage } from '../images/unpack-stored.ts';
import type { DesiredState } from '../manifest/types.ts';
import { parseReference } from '../oci/reference.ts';
import { pathExists } from '../path-exists.ts';
import { DeviceNotPresentError } from '../runtime/devices.ts';
import { SecretNotReadyError } from '../secrets/paths.ts';
import { createContainer, removeContainer, restartContainer, restoreContainer, retireContainer } from './containers.ts';
import { volumesDir, type ReconcileDeps } from './deps.ts';
import type { RegistryHealth } from './observe.ts';
import { pruneImageRecords } from './prune-images.ts';
import { removeBrokenSnapshots } from './repair-snapshots.ts';
import type { ActualState, PullStep, Step } from './types.ts';

export type StepResult = 'ok' | 'failed' | 'waiting' | 'blocked';

export interface StepOutcome {
  step: Step;
  result: StepResult;
  /** Why it failed, waits or was blocked; what it did when ok. */
  message: string;
  error?: unknown;
  ms: number;
}

export interface ExecuteContext {
  deps: ReconcileDeps;
  actual: ActualState;
  generation: number;
  /** The desired state being applied (the gc step forgets image records no generation kept wants). */
  desired?: DesiredState;
  health: RegistryHealth;
  signal: AbortSignal;
  /** Steps running at once (default 4). */
  concurrency?: number;
  onOutcome?: (o: StepOutcome) => void;
  /** The daemon's: pulls outlive the turn that starts them (see BackgroundPulls). */
  background?: BackgroundPulls;
  /**
   * A rollout with a confirmed generation to fall back to: containers it replaces or removes are
   * retired (kept stopped with their writable layers) instead of deleted, until it is confirmed.
   */
  retireReplaced?: boolean;
}

/**
 * Pulls that run beyond the turn that started them. A device on a slow link may download for an
 * hour; its daemon must still restart a crashed container meanwhile. So in `berth run` a pull step
 * starts its pull here and reports `waiting`: its dependents wait for a later turn, everything else
 * goes on, and the end of the pull (reported through `onSettled`) wakes the loop. `berth apply`
 * has none and waits for its pulls.
 */
export class BackgroundPulls {
  private readonly running = new Map<string, number>();
  private readonly settling = new Set<Promise<unknown>>();
  private readonly signal: AbortSignal;
  private readonly onSettled: (o: StepOutcome) => void;

  constructor(signal: AbortSignal, onSettled: (o: StepOutcome) => void) {
    this.signal = signal;
    this.onSettled = onSettled;
  }

  /** Start `step` unless a pull of its image runs already; either way the turn sees it waiting. */
  start(step: PullStep, ctx: ExecuteContext): StepOutcome {
    const since = this.running.get(step.ref);
    if (since !== undefined) {
      return { step, result: 'waiting', message: `pulling in the background since ${new Date(since).toISOString()}`, ms: 0 };
    }
    const now = Date.now();
    this.running.set(step.ref, now);
    const settled = runStep(step, { ...ctx, signal: this.signal }).then(
      (o) => {
        this.running.delete(step.ref);
        this.onSettled(o);
      },
      () => this.running.delete(step.ref), // aborted: the daemon is stopping
    );
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
    return { step, result: 'waiting', message: `pulling in the background since ${new Date(now).toISOString()}`, ms: 0 };
  }

  get size(): number {
    return this.running.size;
  }

  /** Every pull started here has settled (the daemon drains them before closing the stores). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.settling]);
  }
}

export async function executePlan(steps: Step[], ctx: ExecuteContext): Promise<StepOutcome[]> {
  const queue = new PQueue({ concurrency: ctx.concurrency ?? 4 });
  const outcomes = new Map<string, Promise<StepOutcome>>();
  for (const step of steps) {
    const outcome = (async (): Promise<StepOutcome> => {
      const before = await Promise.all(step.after.map((id) => outcomes.get(id)).filter((p) => p !== undefined));
      const held = before.find((o) => o.result !== 'ok');
      if (held) {
        // Name the root cause once, not a chain of "waits for … (blocked: waits for …)".
        const message = held.result === 'blocked' ? held.message : `waits for ${held.step.id} (${held.result}: ${held.message})`;
        return { step, result: 'blocked', message, ms: 0 };
      }
      if (step.kind === 'wait') return { step, result: 'waiting', message: step.reason, ms: 0 };
      if (step.kind === 'pull' && ctx.background && !unpacksLocally(step, ctx)) return ctx.background.start(step, ctx);
      return (await queue.add(() => runStep(step, ctx), { signal: ctx.signal }))!;
    })();
    outcome.then(
      (o) => ctx.onOutcome?.(o),
      () => {},
    );
    outcomes.set(step.id, outcome);
  }
  return Promise.all(outcomes.values());
}

/** A repair whose blobs are all present only unpacks from the content store: quick, no network. */
function unpacksLocally(step: PullStep, ctx: ExecuteContext): boolean {
  return step.repair && ctx.actual.images.some((i) => i.ref === step.ref && i.blobsPresent);
}

async function runStep(step: Step, ctx: ExecuteContext): Promise<StepOutcome> {
  const started = performance.now();
  const { deps, signal } = ctx;
  try {
    const message = await STEP_HANDLERS[step.kind](step as never, ctx);
    deps.metrics?.steps.inc({ kind: step.kind, result: 'ok' });
    return { step, result: 'ok', message, ms: performance.now() - started };
  } catch (error) {
    if (signal.aborted) throw error;
    // A device that is not plugged in holds back that container only, until it appears.
    if (error instanceof DeviceNotPresentError) return { step, result: 'waiting', message: `Waiting (${error.message})`, ms: performance.now() - started };
    // So does a secret it cannot have (yet): the plan waits for it too, this is for a key changed meanwhile.
    if (error instanceof SecretNotReadyError) return { step, result: 'waiting', message: `Waiting (${error.message})`, ms: performance.now() - started };
    deps.metrics?.steps.inc({ kind: step.kind, result: 'failed' });
    return { step, result: 'failed', message: (error as Error).message, error, ms: performance.now() - started };
  }
}

type Handler<S extends Step> = (step: S, ctx: ExecuteContext) => Promise<string>;
type Handlers = { [K in Step['kind']]: Handler<Extract<Step, { kind: K }>> };

/** One handler per step kind: the compiler checks that every kind has one. */
const STEP_HANDLERS: Handlers = {
  pull: pullImage,
  'create-volume': async (step, { deps }) => {
    await mkdir(`${volumesDir(deps.config.root)}/${step.volume}`, { recursive: true, mode: 0o755 });
    return `volume ${step.volume} created`;
  },
  create: async (step, { deps, generation, signal }) => {
    await createContainer(deps, step.doc, step.spec, generation, signal);
    return `${step.container} created and started`;
  },
  start: async (step, { deps, signal }) => {
    if (step.stopFirst) await deps.runtime.stop(step.container, { signal });
    await restartContainer(deps, step.container, step.backoffStreak, signal);
    return `${step.container} started`;
  },
  recreate: async (step, { deps, generation, signal, retireReplaced }) => {
    await createContainer(deps, step.doc, step.spec, generation, signal, {
      retire: retireReplaced,
      startFirst: step.doc.spec.update?.strategy === 'start-first',
    });
    return `${step.container} recreated (${step.changes.join(', ')})${retireReplaced ? '; the old one is kept until the update is confirmed' : ''}`;
  },
  restore: async (step, { deps, generation, signal }) => {
    await restoreContainer(deps, step.doc, generation, signal);
    return `${step.container} restored with its writable layer`;
  },
  remove: async (step, { deps, generation, signal, retireReplaced }) => {
    const keep = retireReplaced && !step.discard;
    if (keep) await retireContainer(deps, step.container, generation, signal);
    await removeContainer(deps, step.container, signal);
    return `${step.container} stopped and removed${keep ? ' (kept until the update is confirmed)' : ''}`;
  },
  gc: async (_step, { deps, desired, signal }) => {
    const forgotten = desired ? pruneImageRecords(deps, desired) : [];
    const report = describeGc(await collect(deps, signal));
    return forgotten.length ? `${report}; images no longer wanted: ${forgotten.join(', ')}` : report;
  },
  wait: async (step) => step.reason,
};

export function collect(deps: ReconcileDeps, signal: AbortSignal): Promise<GcReport> {
  return collectGarbage({
    metadata: deps.metadata,
    content: deps.content,
    snapshotters: [deps.snapshotter],
    signal,
    log: deps.log,
    // Work in flight holds leases; the grace covers writers between their first byte and their lease.
    graceMs: 60_000,
  });
}

function describeGc(report: GcReport): string {
  return `garbage collected: ${report.items.length} objects, ${formatBytes(report.removedBytes)} freed${report.warnings.length ? ` (${report.warnings.join('; ')})` : ''}`;
}

/**
 * Pull (fetch + unpack) an image. A repair of an image whose blobs are all present only unpacks
 * again, from the local content store: it needs no registry, so it works offline.
 */
async function pullImage(step: PullStep, ctx: ExecuteContext): Promise<string> {
  const { deps, signal, health } = ctx;
  const present = ctx.actual.images.find((i) => i.ref === step.ref);
  const record = deps.metadata.getImage(step.ref);
  const unpackSettings = () => unpackSettingsFromConfig(deps.config, { warn: (msg) => deps.log.warn(msg), signal });
  // Repairs: a present blob is never fetched again, nor a recorded snapshot unpacked again, so
  // what is broken on disk goes first.
  for (const digest of present?.corruptBlobs ?? []) {
    await deps.content.delete(digest).catch((err) => {
      if (!isKind(err, 'NotFound')) throw err;
    });
  }
  if (record && step.repair) await removeBrokenSnapshots(deps, record, signal);
  if (record && present?.blobsPresent && step.repair) {
    await unpackStoredImage({
      record,
      content: deps.content,
      snapshotter: deps.snapshotter,
      metadata: deps.metadata,
      signal,
      ...(await unpackSettings()),
    });
    return `${step.ref} unpacked from the content store`;
  }
  // An air-gapped image has no registry to fetch a lost blob from: its archive, if still there, does.
  const archive = record?.labels[IMPORTED_FROM_LABEL];
  if (record && step.repair && archive && (await pathExists(archive))) {
    await importImages({ path: archive, store: deps.content, metadata: deps.metadata, signal });
    const reimported = deps.metadata.getImage(step.ref) ?? record;
    await unpackStoredImage({
      record: reimported,
      content: deps.content,
      snapshotter: deps.snapshotter,
      metadata: deps.metadata,
      signal,
      ...(await unpackSettings()),
    });
    return `${step.ref} imported again from ${archive} and unpacked`;
  }
  const host = parseReference(step.ref).domain;
  try {
    const { pull } = await import('../images/pull.ts');
    const result = await pull({
      ref: step.ref,
      platform: step.platform,
      config: deps.config,
      log: deps.log,
      store: deps.content,
      metadata: deps.metadata,
      client: await deps.registry(),
      fetches: deps.fetches,
      signal,
      unpack: pullUnpacker(deps.snapshotter, await unpackSettings()),
      beforeFetch: async (totalBytes: number) => {
        await ensureFreeSpace(deps.config.root, totalBytes, deps.config.gc.reserveBytes, () => collect(deps, signal));
      },
      onProgress: (e) => {
        if (e.type === 'blob-done') deps.metrics?.bytesPulled.inc(e.transferred);
      },
    });
    health.markUp(host);
    const fetched = result.blobs.filter((b) => !b.skipped).length;
    return `${step.ref} pulled (${fetched} of ${result.blobs.length} blobs fetched), ${result.record.manifestDigest}`;
  } catch (err) {
    if (isKind(err, 'Unavailable')) health.markDown(host, deps.now?.() ?? Date.now());
    throw err;
  }
}
