/**
 * The composition root for reconciling: opens the content store, metadata, the configured
 * snapshotter (overlayfs, or native where overlay mounts do not work), the runtime (runc or crun)
 * and the registry client, running start-up recovery under the reconcile lock.
 */
import { BlobFetches } from '../images/blob-fetches.ts';
import type { ReconcileDeps } from '../reconcile/deps.ts';
import type { Metrics } from '../reconcile/metrics.ts';
import type { FetchResult, RegistryClient } from '../remotes/registry.ts';
import { recoverAtStartUp, type RecoveryOptions } from '../reconcile/start-up-recovery.ts';
import { Runtime } from '../runtime/runtime.ts';
import { AgeSecrets } from '../secrets/age-secrets.ts';
import { openSnapshotter } from '../snapshots/select.ts';
import type { CliContext } from './context.ts';
import { openImageStores } from './stores.ts';

/**
 * `recovery`: start-up recovery under the reconcile lock (src/reconcile/start-up-recovery.ts), by
 * default as `berth (pid N)` waiting up to a minute; false for a reader (`berth plan`), which
 * must change nothing.
 */
export async function openReconcileDeps(
  ctx: CliContext,
  opts: { metrics?: Metrics; recovery?: false | Omit<RecoveryOptions, 'signal'> } = {},
): Promise<ReconcileDeps & { close(): Promise<void> }> {
  const { config, log, signal } = ctx;
  const stores = await openImageStores(ctx, { cleanStaleIngests: false });
  const snapshotter = await openSnapshotter(config.root, config.snapshotter, { signal, recover: false });
  const runtime = await Runtime.open(
    {
      root: config.root,
      binary: config.runtime.binary,
      logMaxBytes: config.runtime.logMaxBytes,
      logMaxFiles: config.runtime.logMaxFiles,
      pidsLimit: config.runtime.pidsLimit,
      initBinary: config.runtime.initBinary,
      updateLockPath: config.updates.lockPath,
      log,
    },
    signal,
  );
  const recovery = opts.recovery ?? { holder: `berth (pid ${process.pid})`, waitMs: 60_000 };
  if (recovery) {
    await recoverAtStartUp({ config, log, metadata: stores.metadata, content: stores.store, snapshotter, runtime }, { ...recovery, signal }).catch(
      async (err) => {
        await snapshotter.close();
        stores.close();
        throw err;
      },
    );
  }
  let client: Promise<RegistryClient> | undefined;
  return {
    config,
    log,
    metadata: stores.metadata,
    content: stores.store,
    snapshotter,
    runtime,
    registry: () => (client ??= import('../remotes/registry.ts').then((m) => new m.RegistryClient({ config, log }))),
    fetches: new BlobFetches<FetchResult>(),
    metrics: opts.metrics,
    secrets: new AgeSecrets({ root: config.root, identityFile: config.secrets.identity, log }),
    async close() {
      if (client) await (await client).close();
      await snapshotter.close();
      stores.close();
    },
  };
}
