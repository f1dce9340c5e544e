/**
 * Start-up recovery: what a crash left half-done is finished or removed (stale ingests, half-made
 * snapshots and snapshot directories, container directories without a record, start-first
 * successors of an interrupted update, expired leases).
 *
 * It runs holding the reconcile lock. Half-made and in-progress look the same from outside: a
 * container directory without its record is what a crash leaves, and also what a running daemon
 * has half-way through creating one. Only the lock holder may decide it is garbage, so recovery
 * waits for (or takes over from a dead) holder like any turn, and readers (`berth plan`,
 * `berth status`) never recover.
 */
import { RECONCILE_LOCK, withLock } from '../metadata/lock.ts';
import { settleSuccessors } from './containers.ts';
import type { ReconcileDeps } from './deps.ts';
import { recoverNetworks } from '../network/networks.ts';

/** How long the daemon waits for the reconcile lock at start-up: a `berth apply` pulling can take minutes. */
export const DAEMON_LOCK_WAIT_MS = 10 * 60_000;

/** The parts recovery repairs (the registry client and the rest are not needed). */
export type RecoveryParts = Pick<ReconcileDeps, 'config' | 'log' | 'metadata' | 'content' | 'snapshotter' | 'runtime'>;

export interface RecoveryOptions {
  /** Who recovers, for the message another process prints while this holds the lock. */
  holder: string;
  /** How long to wait for another holder of the reconcile lock before failing with Unavailable. */
  waitMs: number;
  signal: AbortSignal;
}

export async function recoverAtStartUp(parts: RecoveryParts, opts: RecoveryOptions): Promise<void> {
  const { config, log, metadata } = parts;
  const onWait = (h: { holder: string; pid: number }) => log.info({ holder: h.holder, pid: h.pid }, 'waiting for the reconcile lock before start-up recovery');
  await withLock(metadata, RECONCILE_LOCK, { holder: opts.holder, waitMs: opts.waitMs, signal: opts.signal, onWait }, async (signal) => {
    const ingests = await parts.content.removeStaleIngests(config.pull.staleIngestAgeMs);
    if (ingests.length) log.info({ refs: ingests }, 'removed stale ingests');
    await parts.snapshotter.recover(signal);
    const containers = await parts.runtime.recover(signal);
    if (containers.length) log.info({ containers }, 'removed half-made containers');
    for (const line of await settleSuccessors(parts, signal)) log.info(line);
    const detached = await recoverNetworks({ root: config.root, signal, warn: (m) => log.warn(m) }, (c) => metadata.getContainer(c) !== undefined);
    if (detached.length) log.info({ containers: detached }, 'took containers without a record off their networks');
    const leases = metadata.deleteExpiredLeases();
    if (leases.length) log.info({ leases }, 'removed expired leases');
  });
}
