/**
 * Which process a snapshot in progress belongs to, whatever snapshotter holds it: the unpacker
 * labels the active snapshots it works in, recovery and garbage collection leave a live owner's
 * alone. Shared by the snapshotters, images/unpack.ts and gc/collect.ts, so none of them reaches
 * into another's implementation for it.
 */
import { formatOwner, ownerTextAlive, selfIdentity } from '../owner-identity.ts';
import type { SnapshotKind } from './snapshotter.ts';

/**
 * Label naming the process that owns an in-progress (active) snapshot, as an owner identity
 * (pid, start time, boot id: src/owner-identity.ts); `recover()` removes the snapshot once that
 * process is gone. The key is older than the identity and kept, so the work of an older berth
 * (whose value is a bare pid) is recognised: such a value names no owner.
 */
export const OWNER_LABEL = 'berth.dev/owner-pid';

/** The labels that make a snapshot this process's work in progress. */
export function ownedBySelf(): Record<string, string> {
  return { [OWNER_LABEL]: formatOwner(selfIdentity()) };
}

/** Whether an active snapshot is the work in progress of a live process. */
export function ownedByLiveProcess(info: { kind: SnapshotKind; labels: Record<string, string> }): boolean {
  return info.kind === 'active' && ownerTextAlive(info.labels[OWNER_LABEL]);
}
