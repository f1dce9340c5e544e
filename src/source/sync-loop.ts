/**
 * The git source in the daemon: read what is applied from disk first (offline first: the first
 * turn never waits for the remote), then sync in the background at once and every `interval`,
 * recording the status row and waking the reconcile loop when another revision became current.
 * A failed sync is a condition in the status; the loop goes on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import type { Metadata } from '../metadata/metadata.ts';
import type { GitSource, SourceStatus } from './git.ts';
import { recordSourceStatus } from './status-row.ts';

export interface SourceSyncOptions {
  source: GitSource;
  metadata: Metadata;
  intervalMs: number;
  log: Logger;
  signal: AbortSignal;
  /** A new revision is current: the manifests changed. */
  onChange: (status: SourceStatus) => void;
}

/** Start syncing in the background; `done` settles when `signal` aborts. */
export function startSourceSync(opts: SourceSyncOptions): { done: Promise<void> } {
  const { source, metadata, log, signal } = opts;
  const done = (async () => {
    recordSourceStatus(metadata, await source.load());
    while (!signal.aborted) {
      try {
        const s = await source.sync(signal);
        recordSourceStatus(metadata, s);
        if (s.changed) opts.onChange(s);
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ error: (err as Error).message }, 'git source sync failed; the applied revision keeps running');
        const s = source.status();
        recordSourceStatus(metadata, { ...s, lastError: (err as Error).message });
      }
      await sleep(opts.intervalMs, undefined, { signal }).catch(() => {});
    }
  })();
  return { done };
}
