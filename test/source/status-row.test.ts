/**
 * The Source status row (real SQLite): written when something in it changes, not at every fetch
 * (a device fetching every minute for years must not rewrite the row every minute); a fetch that
 * changed nothing refreshes `last fetch` at most hourly; events when a commit is applied or refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metadata } from '../../src/metadata/metadata.ts';
import type { SourceStatus } from '../../src/source/git.ts';
import { recordSourceStatus } from '../../src/source/status-row.ts';

let dir: string;
let md: Metadata;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-source-row-'));
  md = Metadata.open(join(dir, 'metadata.db'));
});

afterAll(async () => {
  md?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const at = (ms: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + ms);
const ready = (fetchedAt: number): SourceStatus => ({
  url: 'git://h/r.git',
  ref: 'main',
  state: 'Ready',
  reason: 'Applied',
  message: `applied ${A.slice(0, 12)}`,
  fetched: A,
  applied: A,
  signer: 'ops',
  lastFetchAt: at(fetchedAt),
});

describe('recordSourceStatus', () => {
  it('writes only what changed; a bare fetch refreshes the time at most hourly', () => {
    const now = Date.now();
    expect(recordSourceStatus(md, ready(0), now)).toBe(true);
    const row = md.getStatus('Source', 'git://h/r.git')!;
    expect(row).toMatchObject({ state: 'Ready', reason: 'Applied', lastAppliedRevision: A });
    expect(row.message.split('\n')).toEqual([
      `applied ${A.slice(0, 12)}`,
      'url: git://h/r.git',
      'ref: main',
      `fetched: ${A}`,
      `applied: ${A} (signed by ops)`,
      `last fetch: ${at(0).toISOString()}`,
      'last error: -',
    ]);
    expect(recordSourceStatus(md, ready(0), now)).toBe(false);
    expect(recordSourceStatus(md, ready(60_000), now + 60_000)).toBe(false); // same but the fetch time
    expect(md.getStatus('Source', 'git://h/r.git')!.message).toContain(`last fetch: ${at(0).toISOString()}`);
    expect(recordSourceStatus(md, ready(3_700_000), now + 3_700_000)).toBe(true); // an hour later
    expect(md.getStatus('Source', 'git://h/r.git')!.message).toContain(`last fetch: ${at(3_700_000).toISOString()}`);
  });

  it('records a refusal once, with an event, and the next applied commit with another', () => {
    const refused: SourceStatus = {
      ...ready(0),
      state: 'Stalled',
      reason: 'NotSigned',
      message: `commit ${B.slice(0, 12)} is not signed; running ${A.slice(0, 12)}`,
      fetched: B,
      lastError: 'x',
    };
    expect(recordSourceStatus(md, refused)).toBe(true);
    expect(recordSourceStatus(md, { ...refused, lastFetchAt: at(5) })).toBe(false);
    expect(recordSourceStatus(md, { ...ready(0), applied: B, fetched: B, message: `applied ${B.slice(0, 12)}` })).toBe(true);
    const events = md
      .listEvents({ limit: 10 })
      .filter((e) => e.object.kind === 'Source')
      .map((e) => e.reason);
    expect(events).toEqual(expect.arrayContaining(['NotSigned', 'RevisionApplied']));
    expect(events.filter((r) => r === 'NotSigned')).toHaveLength(1);
  });
});
