/**
 * The composition root for reconciling: opens the content store, metadata, the configured
 * snapshotter (overlayfs, or native where overlay mounts do not work), the runtime (runc or crun)
 * and the registry client, running each part's start-up recovery.
 */
import { BlobFetches } from '../images/blob-fetches.ts';
import type { ReconcileDeps } from '../reconcile/deps.ts';
import type { Metrics } from '../reconcile/metrics.ts';
import type { FetchResult, RegistryClient } from '../remotes/registry.ts';
import { Runtime } from '../runtime/runtime.ts';
import { openSnapshotter } from '../snapshots/select.ts';
import type { CliContext } from './context.ts';
import { openImageStores } from './stores.ts';

export async function openReconcileDeps(ctx: CliContext, opts: { metrics?: Metrics } = {}): Promise<ReconcileDeps & { close(): Promise<void> }> {
  const { config, log, signal } = ctx;
  const stores = await openImageStores(ctx);
  const snapshotter = await openSnapshotter(config.root, config.snapshotter, { signal, recover: true });
  const runtime = await Runtime.open({ root: config.root, binary: config.runtime.binary, logMaxBytes: config.runtime.logMaxBytes, logMaxFiles: config.runtime.logMaxFiles, log }, signal);
  const recovered = await runtime.recover(signal);
  if (recovered.length) log.info({ containers: recovered }, 'removed half-made containers');
  const expired = stores.metadata.deleteExpiredLeases();
  if (expired.length) log.info({ leases: expired }, 'removed expired leases');
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
    async close() {
      if (client) await (await client).close();
      await snapshotter.close();
      stores.close();
    },
  };
}
