/**
 * The CRI log records and the reader over crafted files (no runc): parsing, old lines, pieces of
 * one stream joined while the other stream interleaves, tails whose first line starts further back
 * than the chunk read, --since and --stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatLines, LineAssembler, matches, parseRecord, RecordSplitter, MAX_LINE_BYTES } from '../../src/runtime/log-records.ts';
import { readLogAll, readLogTail, readLogTailAt } from '../../src/runtime/logs.ts';

const T = (s: number) => `2026-12-02T06:00:${String(s).padStart(2, '0')}.000000001Z`;
const rec = (s: number, stream: 'stdout' | 'stderr', tag: 'F' | 'P', text: string) => `${T(s)} ${stream} ${tag} ${text}\n`;

describe('CRI log records', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-log-records-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('parses a record, and takes a line without a valid prefix as stdout of unknown time', () => {
    expect(parseRecord(Buffer.from(`${T(1)} stderr P a b `))).toMatchObject({ time: T(1), stream: 'stderr', partial: true });
    expect(parseRecord(Buffer.from(`${T(1)} stderr P a b `)).text.toString()).toBe('a b ');
    expect(parseRecord(Buffer.from(`${T(1)} stdout F`)).text.toString()).toBe(''); // an empty line
    for (const old of ['plain text', `${T(1)} stdin F x`, `${T(1)} stdout X x`, `2026-13-45 stdout F x`, `${T(1)}stdout F x`, '']) {
      const r = parseRecord(Buffer.from(old));
      expect(r, old).toMatchObject({ stream: 'stdout', partial: false });
      expect(r.time, old).toBeUndefined();
      expect(r.text.toString()).toBe(old);
    }
  });

  it('joins the pieces of each stream up to its F record, while the other stream goes on', () => {
    const s = new RecordSplitter();
    const a = new LineAssembler();
    const text = rec(1, 'stdout', 'P', 'hel') + rec(2, 'stderr', 'F', 'oops') + rec(3, 'stdout', 'P', 'lo ') + rec(4, 'stdout', 'F', 'world');
    // Fed in 7-byte bits: records cut anywhere.
    const lines = [];
    for (let i = 0; i < text.length; i += 7) for (const r of s.push(Buffer.from(text.slice(i, i + 7)))) lines.push(...a.push(r));
    expect(lines.map((l) => [l.stream, l.text.toString(), l.time])).toEqual([
      ['stderr', 'oops', T(2)],
      ['stdout', 'hello world', T(1)],
    ]);
    expect(formatLines(lines, { timestamps: true }).toString()).toBe(`${T(2)} oops\n${T(1)} hello world\n`);
  });

  it('gives out a line longer than it keeps in pieces, and what is held when the output ends', () => {
    const a = new LineAssembler();
    const piece = Buffer.alloc(MAX_LINE_BYTES / 2, 'x');
    const out = [...a.push({ stream: 'stdout', partial: true, text: piece }), ...a.push({ stream: 'stdout', partial: true, text: piece })];
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ complete: false });
    expect(out[0]!.text.length).toBe(MAX_LINE_BYTES);
    a.push({ stream: 'stderr', partial: true, text: Buffer.from('half') });
    expect(a.flush().map((l) => [l.stream, l.text.toString(), l.complete])).toEqual([['stderr', 'half', false]]);
    expect(formatLines([{ stream: 'stderr', text: Buffer.from('half'), complete: false }]).toString()).toBe('half');
  });

  it('--since leaves out lines of unknown time; --stream picks one', () => {
    const line = (time: string | undefined, stream: 'stdout' | 'stderr') => ({ time, stream, text: Buffer.alloc(0), complete: true });
    const since = Date.parse(T(2));
    expect(matches(line(T(2), 'stdout'), { sinceMs: since })).toBe(true);
    expect(matches(line(T(1), 'stdout'), { sinceMs: since })).toBe(false);
    expect(matches(line(undefined, 'stdout'), { sinceMs: since })).toBe(false);
    expect(matches(line(undefined, 'stdout'), {})).toBe(true);
    expect(matches(line(T(1), 'stderr'), { stream: 'stdout' })).toBe(false);
  });

  it('a tail reads back far enough for a long line that started before the last chunk', async () => {
    const c = path.join(dir, 'long-tail');
    const big = 'y'.repeat(16 * 1024);
    // An old file, then: short lines, a stdout line of 10 × 16 KiB pieces with stderr lines between, two short lines.
    let log = '';
    for (let i = 0; i < 50; i++) log += rec(1, 'stdout', 'F', `short-${i}`);
    for (let i = 0; i < 10; i++) log += rec(2, 'stdout', 'P', big) + rec(2, 'stderr', 'F', `between-${i}`);
    log += rec(3, 'stdout', 'F', 'end') + rec(4, 'stdout', 'F', 'last-1') + rec(5, 'stderr', 'F', 'last-2');
    await rm(c, { recursive: true, force: true });
    await mkdir(c);
    await writeFile(path.join(c, 'log.1'), 'old one\nold two\n');
    await writeFile(path.join(c, 'log'), log);

    const t = await readLogTailAt(c, 4, { stream: 'stdout' });
    expect(t.lines.map((l) => (l.text.length > 100 ? `${l.text.length} bytes` : l.text.toString()))).toEqual([
      'short-48',
      'short-49',
      `${160 * 1024 + 3} bytes`,
      'last-1',
    ]);
    expect(t.lines[2]!.time).toBe(T(2));
    // Two lines: the 64 KiB read from the end holds enough records, but the long line began before it.
    expect((await readLogTailAt(c, 2, { stream: 'stdout' })).lines.map((l) => l.text.length)).toEqual([160 * 1024 + 3, 6]);
    expect(t.logOffset).toBe(Buffer.byteLength(log));
    expect((await readLogTail(c, 2)).toString()).toBe('last-1\nlast-2\n');
    expect((await readLogTailAt(c, 12, { stream: 'stderr' })).lines.map((l) => l.text.toString())).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `between-${i}`),
      'last-2',
    ]);
    // All of it, the old file first.
    const all = readLogAll(c);
    const texts: string[] = [];
    for await (const batch of all.lines) texts.push(...batch.map((l) => (l.text.length > 100 ? 'long' : l.text.toString())));
    expect(texts.slice(0, 3)).toEqual(['old one', 'old two', 'short-0']);
    expect(texts.filter((x) => x === 'long')).toHaveLength(1);
    expect(all.offset()).toBe(Buffer.byteLength(log));
  });
});
