/**
 * A snapshotter's own record (`<snapshotter root>/metadata.db`, as containerd keeps one per
 * snapshotter): key → numeric id, parent, kind, labels, and the usage measured at commit.
 * Through src/sqlite.ts (WAL, synchronous=FULL, busy waits, user_version migrations): a returned
 * write is on disk, a crash leaves all of a change or none. Every method is synchronous, so a
 * transaction can never be split by an await.
 */
import { alreadyExists, failedPrecondition, notFound } from '../errors.ts';
import { SqliteDatabase, type Migration } from '../sqlite.ts';
import type { SnapshotInfo, SnapshotKind } from './snapshotter.ts';

export interface SnapshotRow extends SnapshotInfo {
  idNum: number;
  size?: number;
  inodes?: number;
}

interface RawRow {
  id: number;
  key: string;
  parent: string | null;
  kind: string;
  labels: string;
  created: number;
  updated: number;
  size: number | null;
  inodes: number | null;
}

/**
 * Append only. Migration 1 keeps `IF NOT EXISTS`: files written before the schema was versioned
 * hold the table at user_version 0.
 */
const MIGRATIONS: readonly Migration[] = [
  (db) =>
    db.exec(`
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  parent TEXT,
  kind TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  size INTEGER,
  inodes INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
`),
];

function toRow(r: RawRow): SnapshotRow {
  return {
    key: r.key,
    parent: r.parent ?? undefined,
    kind: r.kind as SnapshotKind,
    id: String(r.id),
    idNum: r.id,
    labels: JSON.parse(r.labels) as Record<string, string>,
    created: new Date(r.created),
    updated: new Date(r.updated),
    size: r.size ?? undefined,
    inodes: r.inodes ?? undefined,
  };
}

export class SnapshotStore {
  readonly path: string;
  private readonly sql: SqliteDatabase;

  constructor(path: string) {
    this.path = path;
    this.sql = SqliteDatabase.open(path, { label: 'snapshot metadata', migrations: MIGRATIONS });
  }

  close(): void {
    this.sql.close();
  }

  /** Run `fn` in one write transaction (BEGIN IMMEDIATE: other processes wait for the lock); nested calls are savepoints. */
  transaction<T>(fn: () => T): T {
    return this.sql.transaction(fn);
  }

  get(key: string): SnapshotRow | undefined {
    const r = this.sql.stmt('SELECT * FROM snapshots WHERE key = ?').get(key) as RawRow | undefined;
    return r ? toRow(r) : undefined;
  }

  mustGet(key: string): SnapshotRow {
    const r = this.get(key);
    if (!r) throw notFound(`snapshot ${key} not found`);
    return r;
  }

  all(): SnapshotRow[] {
    return (this.sql.stmt('SELECT * FROM snapshots ORDER BY id').all() as unknown as RawRow[]).map(toRow);
  }

  children(key: string): string[] {
    return (this.sql.stmt('SELECT key FROM snapshots WHERE parent = ?').all(key) as Array<{ key: string }>).map((r) => r.key);
  }

  /** Ids of the snapshot's ancestors, nearest first. */
  parentIds(parent: string | undefined): number[] {
    const ids: number[] = [];
    let p = parent;
    while (p !== undefined) {
      const r = this.mustGet(p);
      ids.push(r.idNum);
      p = r.parent;
    }
    return ids;
  }

  /** Insert a new snapshot; returns its id. Checks key and parent. */
  insert(key: string, parent: string | undefined, kind: SnapshotKind, labels: Record<string, string>): number {
    if (this.get(key)) throw alreadyExists(`snapshot ${key} already exists`);
    if (parent !== undefined) {
      const p = this.get(parent);
      if (!p) throw notFound(`parent snapshot ${parent} not found`);
      if (p.kind !== 'committed') throw failedPrecondition(`parent snapshot ${parent} is not committed`);
    }
    const now = Date.now();
    const res = this.sql
      .stmt('INSERT INTO snapshots (key, parent, kind, labels, created, updated) VALUES (?, ?, ?, ?, ?, ?)')
      .run(key, parent ?? null, kind, JSON.stringify(labels), now, now);
    return Number(res.lastInsertRowid);
  }

  /** Turn an active snapshot into a committed one named `name`. */
  /** `labels` replace the snapshot's labels when given. */
  commit(name: string, key: string, usage: { size: number; inodes: number }, labels?: Record<string, string>, parent?: string): void {
    const r = this.mustGet(key);
    if (r.kind !== 'active') throw failedPrecondition(`snapshot ${key} is ${r.kind}, not active: cannot commit`);
    if (this.get(name)) throw alreadyExists(`snapshot ${name} already exists`);
    let newParent = r.parent;
    if (parent !== undefined && parent !== r.parent) {
      if (r.parent !== undefined) throw failedPrecondition(`snapshot ${key} already has parent ${r.parent}`);
      const p = this.get(parent);
      if (!p) throw notFound(`parent snapshot ${parent} not found`);
      if (p.kind !== 'committed') throw failedPrecondition(`parent snapshot ${parent} is not committed`);
      newParent = parent;
    }
    this.sql
      .stmt("UPDATE snapshots SET key = ?, kind = 'committed', parent = ?, labels = ?, updated = ?, size = ?, inodes = ? WHERE id = ?")
      .run(name, newParent ?? null, JSON.stringify(labels ?? r.labels), Date.now(), usage.size, usage.inodes, r.idNum);
  }

  delete(key: string): void {
    this.sql.stmt('DELETE FROM snapshots WHERE key = ?').run(key);
  }

  deleteId(id: number): void {
    this.sql.stmt('DELETE FROM snapshots WHERE id = ?').run(id);
  }
}
