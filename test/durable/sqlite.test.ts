import { statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BerthError, isKind } from '../../src/errors.ts';
import { SnapshotStore } from '../../src/snapshots/store.ts';
import { isBusy, isConstraintViolation, SqliteDatabase, type Migration } from '../../src/sqlite.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-sqlite-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const createT: Migration = (db) => db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0)) STRICT');
const addColumn: Migration = (db) => db.exec('ALTER TABLE t ADD COLUMN note TEXT');
const open = (path: string, migrations: Migration[] = [createT], busyTimeoutMs?: number) =>
  SqliteDatabase.open(path, { label: 'test', migrations, busyTimeoutMs });

function caught(fn: () => unknown): BerthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BerthError);
    return err as BerthError;
  }
  throw new Error('expected a throw');
}

describe('SqliteDatabase', () => {
  it('runs the missing migrations once, counting them in user_version, in WAL mode', () => {
    const path = join(dir, 'a.db');
    const a = open(path);
    expect(a.schemaVersion()).toBe(1);
    a.stmt('INSERT INTO t (k, v) VALUES (?, ?)').run('x', 1);
    a.close();
    const b = open(path, [createT, addColumn]);
    expect(b.schemaVersion()).toBe(2);
    expect(b.stmt('SELECT k, v, note FROM t').all()).toEqual([{ k: 'x', v: 1, note: null }]);
    expect(b.stmt('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(b.checkIntegrity()).toEqual([]);
    b.close();
  });

  it('refuses a file a newer berth wrote, and a failed migration leaves the previous version', () => {
    const path = join(dir, 'b.db');
    open(path, [createT, addColumn]).close();
    expect(caught(() => open(path, [createT])).kind).toBe('FailedPrecondition');
    const broken: Migration = (db) => {
      db.exec('CREATE TABLE half (x)');
      db.exec('THIS IS NOT SQL');
    };
    expect(caught(() => open(path, [createT, addColumn, broken])).kind).toBe('Internal');
    const c = open(path, [createT, addColumn]);
    expect(c.schemaVersion()).toBe(2);
    expect(c.stmt("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    c.close();
  });

  it('nests transactions as savepoints: an inner failure the caller catches undoes only the inner part', () => {
    const db = open(':memory:');
    const put = (k: string, v: number) => db.stmt('INSERT INTO t (k, v) VALUES (?, ?)').run(k, v);
    db.transaction(() => {
      put('outer', 1);
      expect(() =>
        db.transaction(() => {
          put('inner', 2);
          throw new Error('inner fails');
        }),
      ).toThrow('inner fails');
    });
    expect(db.stmt('SELECT k FROM t').all()).toEqual([{ k: 'outer' }]);
    expect(() =>
      db.transaction(() => {
        put('gone', 3);
        throw new Error('outer fails');
      }),
    ).toThrow('outer fails');
    expect(db.stmt('SELECT count(*) AS n FROM t').get()).toEqual({ n: 1 });
    const err = caught(() => db.transaction(async () => put('async', 4)));
    expect(err.kind).toBe('InvalidArgument');
    expect(db.stmt('SELECT count(*) AS n FROM t').get()).toEqual({ n: 1 });
    db.close();
  });

  it('gives SQLite errors kinds: a constraint is InvalidArgument, another writer holding the lock Unavailable, a damaged file Corrupt', async () => {
    const path = join(dir, 'c.db');
    const db = open(path);
    db.stmt('INSERT INTO t (k, v) VALUES (?, ?)').run('x', 1);
    const dup = caught(() => db.stmt('INSERT INTO t (k, v) VALUES (?, ?)').run('x', 2));
    expect(dup.kind).toBe('InvalidArgument');
    expect(dup.message).toContain(`test ${path}`);
    expect(isConstraintViolation(dup)).toBe(true);
    expect(
      isKind(
        caught(() => db.stmt('INSERT INTO t (k, v) VALUES (?, ?)').run('y', -1)),
        'InvalidArgument',
      ),
    ).toBe(true);

    const holder = new DatabaseSync(path);
    holder.exec('BEGIN IMMEDIATE');
    const busy = caught(() => open(path, [createT], 20).transaction(() => undefined));
    expect(busy.kind).toBe('Unavailable');
    expect(isBusy(busy)).toBe(true);
    expect(isConstraintViolation(busy)).toBe(false);
    holder.exec('ROLLBACK');
    holder.close();
    db.close();

    const junk = join(dir, 'junk.db');
    await writeFile(junk, Buffer.alloc(8192, 0x5a));
    expect(caught(() => open(junk)).kind).toBe('Corrupt');
  });
});

describe('SnapshotStore on the kit', () => {
  it('opens a file written before its schema was versioned (table at user_version 0) and keeps its rows', () => {
    const path = join(dir, 'snapshots.db');
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, parent TEXT, kind TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}', created INTEGER NOT NULL, updated INTEGER NOT NULL, size INTEGER, inodes INTEGER);
      CREATE INDEX snapshots_parent ON snapshots(parent);
      INSERT INTO snapshots (key, kind, created, updated) VALUES ('base', 'committed', 1, 1);`);
    old.close();
    const store = new SnapshotStore(path);
    expect(store.all().map((r) => r.key)).toEqual(['base']);
    // Tightened to owner-only, as every database the kit opens.
    for (const f of [path, `${path}-wal`]) expect(statSync(f).mode & 0o777).toBe(0o600);
    store.transaction(() => {
      store.insert('child', 'base', 'active', {});
      expect(() => store.transaction(() => store.insert('base', undefined, 'active', {}))).toThrow(expect.objectContaining({ kind: 'AlreadyExists' }));
    });
    expect(store.children('base')).toEqual(['child']);
    store.close();
    const check = new DatabaseSync(path);
    expect(check.prepare('PRAGMA user_version').get()).toEqual({ user_version: 1 });
    check.close();
  });
});
