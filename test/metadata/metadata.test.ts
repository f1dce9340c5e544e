import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { Metadata, type ImageInput } from '../../src/metadata/metadata.ts';
import { SCHEMA_VERSION } from '../../src/metadata/schema.ts';

let dir: string;
let dbPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-md-'));
  dbPath = join(dir, 'metadata.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const D = (c: string) => `sha256:${c.repeat(64)}`;

function image(name: string, over: Partial<ImageInput> = {}): ImageInput {
  return {
    name,
    target: { digest: D('a'), mediaType: 'application/vnd.oci.image.index.v1+json', size: 500 },
    manifestDigest: D('b'),
    configDigest: D('c'),
    platform: 'linux/amd64',
    size: 12345,
    labels: { origin: 'test' },
    ...over,
  };
}

describe('open', () => {
  test('creates the file in WAL mode with synchronous=FULL and the current schema version', () => {
    const md = Metadata.open(dbPath);
    expect(md.schemaVersion()).toBe(SCHEMA_VERSION);
    md.close();
    const db = new DatabaseSync(dbPath);
    expect((db.prepare('PRAGMA journal_mode').get() as any).journal_mode).toBe('wal');
    db.close();
    // synchronous is per connection: check the one Metadata configures.
    const md2 = Metadata.open(dbPath);
    expect((md2 as any).sql.stmt('PRAGMA synchronous').get().synchronous).toBe(2); // FULL
    expect(md2.checkIntegrity()).toEqual([]);
    md2.close();
  });

  test('refuses a database written by a newer berth, naming both versions', () => {
    Metadata.open(dbPath).close();
    const db = new DatabaseSync(dbPath);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
    db.close();
    try {
      Metadata.open(dbPath);
      expect.unreachable();
    } catch (err) {
      expect(isKind(err, 'FailedPrecondition')).toBe(true);
      expect(String(err)).toContain(String(SCHEMA_VERSION + 5));
    }
  });

  test('a file that is not a database is a Corrupt error naming the path', () => {
    writeFileSync(dbPath, 'this is not sqlite'.repeat(400));
    try {
      Metadata.open(dbPath);
      expect.unreachable();
    } catch (err) {
      expect(isKind(err, 'Corrupt')).toBe(true);
      expect(String(err)).toContain(dbPath);
    }
  });

  test('reopening keeps the data and does not re-run migrations', () => {
    const md = Metadata.open(dbPath);
    md.putImage(image('a:1'));
    md.close();
    const again = Metadata.open(dbPath);
    expect(again.getImage('a:1')?.name).toBe('a:1');
    expect(again.schemaVersion()).toBe(SCHEMA_VERSION);
    again.close();
  });
});

describe('images', () => {
  test('put, get, list, delete round-trip every field', () => {
    let t = 1_000_000;
    const md = Metadata.open(dbPath, { now: () => new Date(t) });
    const put = md.putImage(image('reg/b:1', { snapshotter: 'overlayfs', chainIds: [D('1'), D('2')] }));
    expect(put).toEqual({
      ...image('reg/b:1', { snapshotter: 'overlayfs', chainIds: [D('1'), D('2')] }),
      createdAt: new Date(1_000_000),
      updatedAt: new Date(1_000_000),
    });
    md.putImage(image('reg/a:1'));
    expect(md.getImage('reg/a:1')).not.toHaveProperty('snapshotter');
    expect(md.getImage('reg/a:1')).not.toHaveProperty('chainIds');
    expect(md.listImages().map((i) => i.name)).toEqual(['reg/a:1', 'reg/b:1']);

    t = 2_000_000;
    const updated = md.putImage(image('reg/b:1', { manifestDigest: D('9') }));
    expect(updated.createdAt).toEqual(new Date(1_000_000)); // kept
    expect(updated.updatedAt).toEqual(new Date(2_000_000));
    expect(updated.manifestDigest).toBe(D('9'));

    expect(md.deleteImage('reg/b:1')).toBe(true);
    expect(md.deleteImage('reg/b:1')).toBe(false);
    expect(md.getImage('reg/b:1')).toBeUndefined();
    md.close();
  });

  test('an explicit createdAt is honoured', () => {
    const md = Metadata.open(dbPath);
    const rec = md.putImage({ ...image('x'), createdAt: new Date(42) });
    expect(rec.createdAt).toEqual(new Date(42));
    md.close();
  });
});

describe('leases', () => {
  test('create, add resources (idempotently), list, delete', () => {
    const md = Metadata.open(dbPath, { now: () => new Date(5000) });
    md.createLease('pull-1', { expiresAt: new Date(9000), labels: { ref: 'busybox' } });
    md.addLeaseResource('pull-1', { type: 'content', key: D('a') });
    md.addLeaseResource('pull-1', { type: 'content', key: D('a') });
    md.addLeaseResource('pull-1', { type: 'ingest', key: 'layer-sha256:aaa' });
    md.addLeaseResource('pull-1', { type: 'snapshot', key: 'overlayfs/extract-1 x' });
    md.createLease('forever');
    expect(md.listLeases()).toEqual([
      { id: 'forever', expiresAt: undefined, labels: {}, createdAt: new Date(5000), resources: [] },
      {
        id: 'pull-1',
        expiresAt: new Date(9000),
        labels: { ref: 'busybox' },
        createdAt: new Date(5000),
        resources: [
          { type: 'content', key: D('a') },
          { type: 'ingest', key: 'layer-sha256:aaa' },
          { type: 'snapshot', key: 'overlayfs/extract-1 x' },
        ],
      },
    ]);
    md.deleteLease('pull-1');
    md.deleteLease('pull-1'); // idempotent
    expect(md.listLeases().map((l) => l.id)).toEqual(['forever']);
    md.close();
  });

  test('a duplicate lease is AlreadyExists; a resource on a missing lease is NotFound', () => {
    const md = Metadata.open(dbPath);
    md.createLease('l');
    expect(() => md.createLease('l')).toThrow(expect.objectContaining({ kind: 'AlreadyExists' }));
    expect(() => md.addLeaseResource('nope', { type: 'content', key: D('a') })).toThrow(expect.objectContaining({ kind: 'NotFound' }));
    md.close();
  });

  test('activeLeases ignores expired ones; deleteExpiredLeases removes them and their resources', () => {
    let t = 10_000;
    const md = Metadata.open(dbPath, { now: () => new Date(t) });
    md.createLease('old', { expiresAt: new Date(11_000) });
    md.addLeaseResource('old', { type: 'content', key: D('1') });
    md.createLease('new', { expiresAt: new Date(99_000) });
    md.createLease('forever');
    expect(md.activeLeases().map((l) => l.id)).toEqual(['forever', 'new', 'old']);
    t = 20_000;
    expect(md.activeLeases().map((l) => l.id)).toEqual(['forever', 'new']);
    expect(md.deleteExpiredLeases()).toEqual(['old']);
    expect(md.listLeases().map((l) => l.id)).toEqual(['forever', 'new']);
    expect((md as any).sql.stmt('SELECT COUNT(*) AS n FROM lease_resources').get().n).toBe(0);
    md.close();
  });
});

describe('transactions', () => {
  test('a throwing body leaves nothing behind', () => {
    const md = Metadata.open(dbPath);
    expect(() =>
      md.transaction(() => {
        md.putImage(image('a'));
        md.createLease('l');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(md.listImages()).toEqual([]);
    expect(md.listLeases()).toEqual([]);
    md.close();
  });

  test('nested calls join the outer transaction; a caught nested failure undoes only itself', () => {
    const md = Metadata.open(dbPath);
    md.transaction(() => {
      md.putImage(image('outer'));
      try {
        md.transaction(() => {
          md.putImage(image('inner'));
          throw new Error('inner fails');
        });
      } catch {
        // the caller decided to carry on
      }
      md.transaction(() => md.putImage(image('inner2')));
    });
    expect(md.listImages().map((i) => i.name)).toEqual(['inner2', 'outer']);
    md.close();
  });

  test('an async body is refused and rolled back', () => {
    const md = Metadata.open(dbPath);
    expect(() =>
      md.transaction(async () => {
        md.putImage(image('a'));
      }),
    ).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    expect(md.listImages()).toEqual([]);
    md.close();
  });

  test('a second process-like connection sees a transaction all at once', () => {
    const a = Metadata.open(dbPath);
    const b = Metadata.open(dbPath);
    a.transaction(() => {
      a.putImage(image('x'));
      expect(b.getImage('x')).toBeUndefined(); // not yet committed
      a.putImage(image('y'));
    });
    expect(b.listImages().map((i) => i.name)).toEqual(['x', 'y']);
    a.close();
    b.close();
  });
});

describe('migrations', () => {
  test('a new migration runs once on an existing file and keeps its data; a failing one leaves the old version intact', async () => {
    const { MIGRATIONS } = await import('../../src/metadata/schema.ts');
    const md = Metadata.open(dbPath);
    md.putImage(image('kept'));
    md.close();

    let runs = 0;
    const addColumn = (db: DatabaseSync) => {
      runs++;
      db.exec("ALTER TABLE images ADD COLUMN note TEXT NOT NULL DEFAULT 'n/a'");
    };
    const failing = (db: DatabaseSync) => {
      db.exec('CREATE TABLE half_done (x INTEGER)');
      throw new Error('migration bug');
    };

    expect(() => Metadata.open(dbPath, { migrations: [...MIGRATIONS, failing] })).toThrow('migration bug');
    const after = Metadata.open(dbPath);
    expect(after.schemaVersion()).toBe(MIGRATIONS.length);
    expect((after as any).sql.stmt("SELECT name FROM sqlite_master WHERE name = 'half_done'").get()).toBeUndefined();
    after.close();

    const up = Metadata.open(dbPath, { migrations: [...MIGRATIONS, addColumn] });
    expect(up.schemaVersion()).toBe(MIGRATIONS.length + 1);
    expect(up.getImage('kept')?.name).toBe('kept');
    up.close();
    Metadata.open(dbPath, { migrations: [...MIGRATIONS, addColumn] }).close();
    expect(runs).toBe(1);
    // And the older berth refuses the newer file rather than half-understanding it.
    expect(() => Metadata.open(dbPath)).toThrow(expect.objectContaining({ kind: 'FailedPrecondition' }));
  });
});
