/**
 * The webhook's queue is the events table itself (metadata.db): a cursor, the id of the last event
 * the receiver took, walks it in id order. An event is written once, when it happens, and the only
 * extra write is the cursor, saved when the queue runs empty (one write for a turn's burst of
 * events), every `saveEvery` deliveries, and when berth stops: an idle device writes nothing.
 *
 * Crash safety comes with the table: an event is on disk (WAL, synchronous=FULL) before anything
 * reads it, and a `kill -9` loses only cursor moves not yet saved, so those events are sent again:
 * at-least-once delivery, the events' ids telling a receiver what it already has.
 *
 * The bound: only the newest `queueSize` events after the cursor are kept for the receiver (and
 * metadata.db keeps at most 1000 events in all). The ones before them are dropped and counted: the
 * head of the queue then says how many, and the sender tells the receiver before the next event.
 */
import type { BerthEvent, Metadata } from '../metadata/metadata.ts';

export type EventLog = Pick<Metadata, 'eventsAfter' | 'lastEventId' | 'getSetting' | 'setSetting'>;

/** The settings row holding the cursor. */
export const CURSOR_SETTING = 'notify.delivered';

export interface QueueHead {
  /** Events between the cursor and `event` that are no longer kept for the receiver. */
  dropped: number;
  event: BerthEvent;
}

export class EventQueue {
  private readonly events: EventLog;
  private readonly queueSize: number;
  private cursor: number;
  private saved: number;

  /**
   * The queue over `events`. The first time (no cursor saved yet) it starts after the newest event:
   * a webhook configured today is not sent the device's history.
   */
  constructor(events: EventLog, queueSize: number) {
    this.events = events;
    this.queueSize = queueSize;
    const stored = Number(events.getSetting(CURSOR_SETTING)); // NaN when absent
    const known = Number.isSafeInteger(stored);
    this.cursor = known ? stored : events.lastEventId();
    this.saved = known ? stored : -1; // the starting point is saved at once
    this.save();
  }

  /** The next event to deliver, with the count dropped before it; undefined when the receiver has everything. */
  head(): QueueHead | undefined {
    const last = this.events.lastEventId();
    if (last <= this.cursor) return undefined;
    const [event] = this.events.eventsAfter(Math.max(this.cursor, last - this.queueSize), 1);
    // Ids are given without gaps (AUTOINCREMENT, one writer at a time), so a gap is what was pruned or bounded away.
    return event && { dropped: event.id - this.cursor - 1, event };
  }

  /** Events waiting, at most `queueSize`. */
  pending(): number {
    return Math.min(Math.max(this.events.lastEventId() - this.cursor, 0), this.queueSize);
  }

  /** The receiver has taken everything up to `id` (or was told it was dropped). */
  advance(id: number): void {
    if (id > this.cursor) this.cursor = id;
  }

  /** Deliveries since the cursor was last saved. */
  unsaved(): number {
    return this.cursor - this.saved;
  }

  /** Write the cursor, if it moved. */
  save(): void {
    if (this.cursor === this.saved) return;
    this.events.setSetting(CURSOR_SETTING, String(this.cursor));
    this.saved = this.cursor;
  }
}
