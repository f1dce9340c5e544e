/**
 * What the webhook receives: one JSON object per POST, shaped like Flux's notification event
 * (`involvedObject`, `severity`, `timestamp`, `reason`, `message`, `metadata` of strings,
 * `reportingController`, `reportingInstance`), so a receiver written for Flux reads it, plus `id`:
 * the event's number on this device, which only grows, for receivers to drop a repeat
 * (delivery is at least once).
 */
import type { BerthEvent } from '../metadata/metadata.ts';
import { DEVICE_KIND } from './device-status.ts';

export interface WebhookPayload {
  /** The event's id on this device; absent on a "dropped" marker. */
  id?: number;
  involvedObject: { kind: string; name: string };
  severity: 'info' | 'error';
  timestamp: string;
  reason: string;
  message: string;
  metadata: Record<string, string>;
  reportingController: 'berth';
  reportingInstance: string;
}

export function eventPayload(e: BerthEvent, device: string): WebhookPayload {
  return {
    id: e.id,
    involvedObject: e.object,
    severity: e.type === 'Warning' ? 'error' : 'info',
    timestamp: e.time.toISOString(),
    reason: e.reason,
    message: e.message,
    metadata: { ...e.details, device },
    reportingController: 'berth',
    reportingInstance: device,
  };
}

/** Said in place of `count` events the queue no longer held when the receiver could take them. */
export function droppedPayload(count: number, queueSize: number, device: string, now: Date): WebhookPayload {
  return {
    involvedObject: { kind: DEVICE_KIND, name: device },
    severity: 'error',
    timestamp: now.toISOString(),
    reason: 'EventsDropped',
    message: `${count} event${count === 1 ? ' was' : 's were'} dropped while the webhook could not be reached (the queue keeps the newest ${queueSize})`,
    metadata: { dropped: String(count), device },
    reportingController: 'berth',
    reportingInstance: device,
  };
}
