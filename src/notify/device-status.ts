/**
 * The device's overall status, for the webhook: the worst state of its objects (Stalled over
 * Reconciling over Ready) and the revision it applied. Each change is recorded as an event of kind
 * `Device`, so it travels to the receiver in order with the other events, and is written only when
 * it changes (the daemon asks after every turn; an SD card should not pay for an idle device).
 *
 * What counts as a change: the state, the applied generation and revision, and which objects are
 * not Ready with their state and reason. Message text alone (a back-off's "restart in 4s") is not.
 */
import type { BerthEvent, Generation, Metadata, ObjectState, ObjectStatus } from '../metadata/metadata.ts';

export const DEVICE_KIND = 'Device';
export const STATUS_CHANGED = 'StatusChanged';

export interface DeviceStatus {
  state: ObjectState;
  /** One line for people: the state and the first object that is not Ready. */
  message: string;
  /** What changes of status are judged by, and what the webhook's `metadata` carries. */
  details: { state: ObjectState; generation: string; revision: string; notReady: string };
}

/** Pure: the overall status from the objects' rows and the generation last applied. */
export function deviceStatus(objects: readonly ObjectStatus[], applied: Pick<Generation, 'id' | 'revision'> | undefined): DeviceStatus {
  const rank = (s: ObjectState) => (s === 'Stalled' ? 2 : s === 'Reconciling' ? 1 : 0);
  const notReady = objects.filter((o) => o.state !== 'Ready').sort((a, b) => rank(b.state) - rank(a.state));
  const state: ObjectState = notReady[0]?.state ?? 'Ready';
  const at = applied ? ` (generation ${applied.id}${applied.revision ? `, revision ${applied.revision.slice(0, 12)}` : ''})` : '';
  const worst = notReady[0];
  const message = worst
    ? `${state}: ${worst.kind}/${worst.name} ${worst.reason}: ${worst.message.split('\n')[0]}${notReady.length > 1 ? ` (and ${notReady.length - 1} more not Ready)` : ''}${at}`
    : `Ready: ${objects.length} objects${at}`;
  return {
    state,
    message,
    details: {
      state,
      generation: applied ? String(applied.id) : '',
      revision: applied?.revision ?? '',
      notReady: notReady.map((o) => `${o.kind}/${o.name}=${o.state}/${o.reason}`).join(','),
    },
  };
}

function sameStatus(a: Record<string, string> | undefined, b: DeviceStatus['details']): boolean {
  return !!a && a.state === b.state && a.generation === b.generation && a.revision === b.revision && a.notReady === b.notReady;
}

/**
 * Record the device's status as an event if it differs from the last one recorded; returns the
 * event written. Only the daemon records it, so reading and writing need no transaction (which
 * would take the write lock after every turn for nothing).
 */
export function recordDeviceStatus(metadata: Metadata, device: string, objects = metadata.listStatus()): BerthEvent | undefined {
  const now = deviceStatus(objects, metadata.currentGeneration());
  const object = { kind: DEVICE_KIND, name: device };
  const [last] = metadata.listEvents({ object, limit: 1 });
  if (last?.reason === STATUS_CHANGED && sameStatus(last.details, now.details)) return undefined;
  const previous = last?.reason === STATUS_CHANGED ? last.details?.state : undefined;
  return metadata.addEvent({
    object,
    type: now.state === 'Stalled' ? 'Warning' : 'Normal',
    reason: STATUS_CHANGED,
    message: now.message,
    details: { ...now.details, ...(previous ? { previousState: previous } : {}) },
  });
}
