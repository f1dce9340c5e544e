/**
 * Schema migration 3: events get an optional `details` column. A database written by the previous
 * schema keeps its events (without details) and takes new ones with details; the queue's reader
 * walks them oldest first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Metadata } from '../../src/metadata/metadata.ts';
import { MIGRATIONS } from '../../src/metadata/schema.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-event-details-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('event details (migration 3)', () => {
  it('upgrades a version-2 database, keeping its events, and stores details from then on', () => {
    const path = join(dir, 'metadata.db');
    const old = Metadata.open(path, { migrations: MIGRATIONS.slice(0, 2) });
    expect(old.schemaVersion()).toBe(2);
    old.close();
    // An event as the version-2 code wrote it.
    const raw = new DatabaseSync(path);
    raw.prepare("INSERT INTO events (time, kind, name, type, reason, message) VALUES (1, 'Container', 'web', 'Normal', 'Created', 'before the upgrade')").run();
    raw.close();

    const md = Metadata.open(path);
    expect(md.schemaVersion()).toBe(MIGRATIONS.length);
    md.addEvent({
      object: { kind: 'Device', name: 'kiosk-7' },
      type: 'Warning',
      reason: 'StatusChanged',
      message: 'Stalled',
      details: { state: 'Stalled', revision: 'abc' },
    });
    md.addEvent({ object: { kind: 'Container', name: 'web' }, type: 'Normal', reason: 'Started', message: 'no details' });
    const all = md.eventsAfter(0, 10);
    expect(all.map((e) => [e.id, e.message, e.details])).toEqual([
      [1, 'before the upgrade', undefined],
      [2, 'Stalled', { state: 'Stalled', revision: 'abc' }],
      [3, 'no details', undefined],
    ]);
    expect(md.eventsAfter(1, 1).map((e) => e.id)).toEqual([2]);
    expect(md.lastEventId()).toBe(3);
    md.close();
  });

  it('has no last event id on an empty table', () => {
    const md = Metadata.open(':memory:');
    expect(md.lastEventId()).toBe(0);
    expect(md.eventsAfter(0, 5)).toEqual([]);
    md.close();
  });
});
