/**
 * What a reconcile turn works on: the stores, the snapshotter, the runtime and the registry client.
 * Each is typed as the small interface the core calls (ContentStore, Snapshotter, ContainerRuntime),
 * not as an implementation: the composition root (src/cli/daemon-deps.ts) passes the real ones,
 * the unit tests pass in-memory fakes (test/fakes/) and run whole turns without root.
 */
import type { Config } from '../config/config.ts';
import type { ContentStore, StaleIngests } from '../content/content.ts';
import type { BlobFetches } from '../images/blob-fetches.ts';
import type { Logger } from '../log.ts';
import type { Metadata } from '../metadata/metadata.ts';
import type { FetchResult, ImageRegistry } from '../remotes/image-registry.ts';
import type { ContainerRuntime } from '../runtime/container-runtime.ts';
import type { SecretProvider } from '../secrets/age-secrets.ts';
import type { Snapshotter } from '../snapshots/snapshotter.ts';
import type { Metrics } from './metrics.ts';

export interface ReconcileDeps {
  config: Config;
  log: Logger;
  metadata: Metadata;
  content: ContentStore & StaleIngests;
  snapshotter: Snapshotter;
  runtime: ContainerRuntime;
  /**
   * The registry client, made on first use: a device that runs imported images never loads the
   * HTTP client (undici costs ~20 MiB of resident memory).
   */
  registry(): Promise<ImageRegistry>;
  /** Shared so that concurrent pulls in one process never download a blob twice. */
  fetches: BlobFetches<FetchResult>;
  metrics?: Metrics;
  /** Secrets decrypted on the device (src/secrets); absent: no container may use one. */
  secrets?: SecretProvider;
  /** The clock, for tests. */
  now?: () => number;
}

/** `<root>/volumes/<name>`: named volumes, which survive their containers. */
export function volumesDir(root: string): string {
  return `${root}/volumes`;
}
