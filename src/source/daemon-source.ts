/**
 * The git source in `berth run` (when `[source.git]` is configured and no `-f` is given): the
 * manifests are read through `<root>/sources/current/<path>`, syncing runs in the background from
 * the loop's start (the first turn runs what was applied before, without waiting for the remote),
 * and a newly current revision asks for a turn at once: a switched link is not a file event a
 * watcher is sure to see.
 */
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import type { Metadata } from '../metadata/metadata.ts';
import { GitSource, short } from './git.ts';
import { startSourceSync } from './sync-loop.ts';

export interface DaemonSource {
  manifests: string;
  /** Start syncing; `trigger` asks the reconcile loop for a turn. */
  attach(trigger: (reason: string) => void): void;
  /** Stop syncing and wait for a sync in progress to end. */
  stop(): Promise<void>;
}

export function daemonSource(deps: { config: Config; log: Logger; metadata: Metadata }, signal: AbortSignal): DaemonSource | undefined {
  const { config, log, metadata } = deps;
  const git = config.source.git;
  if (!git) return undefined;
  const source = new GitSource({ root: config.root, config: git, log });
  const stopping = new AbortController();
  const stopAll = () => stopping.abort();
  signal.addEventListener('abort', stopAll, { once: true });
  let running: Promise<void> | undefined;
  return {
    manifests: source.manifestsPath(),
    attach(trigger) {
      log.info({ url: source.status().url, ref: git.ref, path: git.path, intervalMs: git.intervalMs }, 'git source: syncing in the background');
      running = startSourceSync({
        source,
        metadata,
        intervalMs: git.intervalMs,
        log,
        signal: stopping.signal,
        onChange: (s) => trigger(`git source: ${short(s.applied!)} is current`),
      }).done;
    },
    async stop() {
      signal.removeEventListener('abort', stopAll);
      stopping.abort();
      await running;
    },
  };
}
