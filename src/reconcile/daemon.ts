/**
 * `berth run`: the daemon. Start-up is recovery (run under the reconcile lock when the parts were
 * opened) plus the import directory (under the lock too); then the level-triggered loop runs until SIGTERM. chokidar events on
 * the manifests (debounced), task exits (the shims' exit files), back-off deadlines from the plan
 * and the resync timer only make the next turn come sooner.
 */
import { watch } from 'chokidar';
import { isManifestFileName } from '../manifest/files.ts';
import { watchExits } from '../runtime/exit-watch.ts';
import type { ReconcileDeps } from './deps.ts';
import { importDirectory } from './import-dir.ts';
import { ReconcileLoop } from './loop.ts';
import { prepareMetricsAddress, restrictMetricsSocket } from './metrics-address.ts';
import type { StepOutcome } from './execute.ts';
import { ContainerProbes } from './container-probes.ts';
import { listNetworks } from '../network/listing.ts';
import { recordContainerUsage } from './container-usage.ts';
import { Reconciler, type TurnReport } from './reconciler.ts';
import { DAEMON_LOCK_WAIT_MS } from './start-up-recovery.ts';
import { deviceName } from '../config/device-name.ts';
import { IdleCollection } from './idle-collection.ts';

export interface DaemonOptions {
  manifests: string;
  allowEmpty?: boolean;
  signal: AbortSignal;
  /** Called after every turn (the CLI prints status on a terminal). */
  onTurn?: (report: TurnReport) => void;
  /** Called when a pull that outlived its turn ends. */
  onBackgroundOutcome?: (o: StepOutcome) => void;
  debounceMs?: number;
  /** Called once the loop exists, with a way to ask for a turn (the git source: a new revision is current). */
  onLoopReady?: (trigger: (reason: string) => void) => void;
}

export async function runDaemon(deps: ReconcileDeps, opts: DaemonOptions): Promise<void> {
  const { config, log, signal } = { ...deps, signal: opts.signal };
  if (deps.metrics && config.metrics.address) {
    const { serveMetrics } = await import('./metrics.ts');
    await prepareMetricsAddress(config.metrics.address, config.metrics.allowRemote);
    await serveMetrics(deps.metrics, config.metrics.address, signal);
    await restrictMetricsSocket(config.metrics.address);
    log.info({ address: config.metrics.address }, 'serving /healthz and /metrics');
  }
  const holder = `berth run (pid ${process.pid})`;
  await importDirectory(deps, config.reconcile.importDir, signal, { holder, waitMs: DAEMON_LOCK_WAIT_MS });
  // [notify]: events and status changes to a webhook (loaded only when one is configured).
  const notifier = config.notify ? await (await import('../notify/notifier.ts')).startNotifier(deps, signal) : undefined;

  const probes = new ContainerProbes(deps, (name, state) => {
    deps.metrics?.setContainerHealth(name, state.status);
    loop.trigger(`health of ${name}: ${state.status}`, { immediate: true });
  });
  const reconciler = new Reconciler(deps, {
    manifests: opts.manifests,
    allowEmpty: opts.allowEmpty,
    holder,
    probes: (name) => probes.verdict(name),
    verifyBlobDigests: true,
    remoteCheckWaitMs: 500,
    onLateAnswer: () => loop.trigger('a registry answered late', { immediate: true }),
    backgroundPulls: {
      signal,
      onPullSettled: (o) => {
        opts.onBackgroundOutcome?.(o);
        loop.trigger(`pull of ${o.step.kind === 'pull' ? o.step.ref : o.step.id} ended`, { immediate: true });
      },
    },
  });
  let wakeTimer: NodeJS.Timeout | undefined;
  const idleCollection = new IdleCollection({ everyMs: config.reconcile.resyncIntervalMs / 2 });
  const loop: ReconcileLoop = new ReconcileLoop({
    resyncIntervalMs: config.reconcile.resyncIntervalMs,
    debounceMs: opts.debounceMs ?? 150,
    onError: (err) => {
      if (deps.metrics) deps.metrics.healthy = false;
      log.error({ err }, 'reconcile turn failed');
    },
    turn: async (reasons, s) => {
      log.debug({ reasons }, 'reconcile turn');
      const report = await reconciler.turn(s);
      notifier?.afterTurn();
      if (deps.metrics) {
        deps.metrics.healthy = true;
        deps.metrics.setInfo(deviceName(config), deps.metadata.currentGeneration()?.revision);
        const counts: Record<string, number> = {};
        for (const c of report.actual.containers) counts[c.state] = (counts[c.state] ?? 0) + 1;
        deps.metrics.setContainerCounts(counts);
        // Per-container CPU, memory and restarts: a reading that fails only leaves the last values.
        await recordContainerUsage(deps.metrics, deps.runtime).catch((err) => log.debug({ err }, 'cannot read container usage'));
        await listNetworks(config.root, report.desired?.networks).then(
          (n) => deps.metrics?.setNetworkCounts(n),
          (err) => log.debug({ err }, 'cannot read the networks'),
        );
      }
      await probes.sync(report.desired, s);
      // A back-off ends by itself, and a rollout can be confirmed at a known time: wake up for the earliest.
      const until = Math.min(...report.steps.flatMap((st) => (st.kind === 'wait' && st.until ? [st.until] : [])), report.rollout?.wakeAt ?? Infinity);
      clearTimeout(wakeTimer);
      if (Number.isFinite(until)) wakeTimer = setTimeout(() => loop.trigger('back-off ended', { immediate: true }), Math.max(0, until - Date.now()) + 50);
      // Something was done: look again at once, so a turn that made changes is followed by one that confirms them.
      if (report.again || report.outcomes.some((o) => o.result === 'ok' && o.step.kind !== 'gc')) loop.trigger('confirm changes', { immediate: true });
      opts.onTurn?.(report);
      // Waiting and blocked steps do no work; done and failed ones did.
      const worked = !!report.again || report.outcomes.some((o) => o.result === 'ok' || o.result === 'failed');
      const collecting = performance.now();
      if (idleCollection.afterTurn(worked)) log.debug({ ms: Math.round(performance.now() - collecting) }, 'idle turn: collected garbage');
    },
  });

  opts.onLoopReady?.((reason) => loop.trigger(reason, { immediate: true }));
  const watcher = watch(opts.manifests, {
    ignoreInitial: true,
    ignored: (p, stats) => !!stats?.isFile() && !isManifestFileName(p.split('/').pop() ?? ''),
  });
  watcher.on('all', (event, path) => loop.trigger(`manifests ${event} ${path}`));

  // berth-shim writes <root>/containers/<name>/exit.json when a task ends. Restarts are planned
  // (with their back-off) by the loop itself, so this only wakes it; the resync timer covers a
  // missed event.
  const exits = watchExits(
    deps.runtime.dir,
    (name) => loop.trigger(`task ${name} exited`, { immediate: true }),
    (err) => log.warn({ err }, 'cannot watch for task exits; the resync timer will notice them'),
  );
  log.info({ manifests: opts.manifests, root: config.root, snapshotter: deps.snapshotter.name }, 'berth is running');
  try {
    await loop.run(signal);
  } finally {
    clearTimeout(wakeTimer);
    await probes.close();
    await reconciler.drain();
    await notifier?.stop();
    exits.close();
    await watcher.close();
    log.info('berth stopped; containers keep running');
  }
}
