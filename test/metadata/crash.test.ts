import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Metadata } from '../../src/metadata/metadata.ts';
import { SCHEMA_VERSION } from '../../src/metadata/schema.ts';

const WRITER = join(import.meta.dirname, 'fixtures', 'crash-writer.ts');

let dir: string;
let child: ChildProcess | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-md-crash-'));
});
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startWriter(dbPath: string, mode: string, until: string): Promise<ChildProcess> {
  const c = spawn(process.execPath, [WRITER, dbPath, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = c;
  let out = '';
  let err = '';
  c.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    c.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(until)) resolve(c);
    });
    c.on('exit', (code, sig) => reject(new Error(`writer exited early (${code ?? sig}): ${err}`)));
  });
}

function killHard(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    c.on('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

test('kill -9 mid-transaction loop: the file is sound and every transaction is all there or not at all', async () => {
  const dbPath = join(dir, 'metadata.db');
  for (let round = 0; round < 3; round++) {
    const c = await startWriter(dbPath, 'write', 'ready');
    // Let it run a little past "ready" so the kill lands at an arbitrary point in a transaction.
    await new Promise((r) => setTimeout(r, 30 + round * 37));
    await killHard(c);

    const md = Metadata.open(dbPath);
    expect(md.checkIntegrity()).toEqual([]);
    const images = md.listImages();
    const leases = new Map(md.listLeases().map((l) => [l.id, l]));
    expect(images.length).toBeGreaterThan(20);
    // Every image has its lease with all three resources and its event, and vice versa.
    for (const img of images) {
      const n = img.labels.n!;
      const lease = leases.get(`lease-${n}`);
      expect(lease, `lease-${n}`).toBeDefined();
      expect(lease!.resources).toHaveLength(3);
    }
    expect(leases.size).toBe(images.length);
    // Events are capped (newest 1000) but each one's image exists, and the newest image has its event.
    const events = md.listEvents({ limit: 100_000 });
    for (const e of events) expect(md.getImage(e.object.name), e.object.name).toBeDefined();
    const newestN = Math.max(...images.map((i) => Number(i.labels.n)));
    expect(newestN).toBe(images.length - 1); // no gaps: transactions commit in order
    expect(events.at(-1)!.object.name).toBe(`img-${newestN}`);
    md.close();
    // The next round writes over the same names (a new writer re-creates from 0): start fresh.
    rmSync(dbPath, { force: true });
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });
  }
});

test('a lock held by a process that was kill -9ed is taken over at once', async () => {
  const dbPath = join(dir, 'metadata.db');
  const c = await startWriter(dbPath, 'lock', 'locked');
  const md = Metadata.open(dbPath);
  const first = md.tryAcquireLock('reconcile', { holder: 'test', ttlMs: 60_000 });
  expect(first.acquired).toBe(false);
  if (!first.acquired) {
    expect(first.heldBy.pid).toBe(c.pid);
    expect(first.heldBy.holder).toBe('crash-writer');
  }
  await killHard(c);
  const second = md.tryAcquireLock('reconcile', { holder: 'test', ttlMs: 60_000 });
  expect(second.acquired).toBe(true);
  md.close();
});

test('eight processes opening a fresh database at once all get the migrated schema and can write', async () => {
  const dbPath = join(dir, 'metadata.db');
  const runs = Array.from(
    { length: 8 },
    () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(process.execPath, [WRITER, dbPath, 'open'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout!.on('data', (d) => (out += d));
        c.stderr!.on('data', (d) => (err += d));
        c.on('exit', (code) => resolve({ code, out, err }));
      }),
  );
  const results = await Promise.all(runs);
  for (const r of results) {
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe(`version ${SCHEMA_VERSION}`);
  }
  const md = Metadata.open(dbPath);
  expect(md.listImages()).toHaveLength(8);
  expect(md.checkIntegrity()).toEqual([]);
  md.close();
});
