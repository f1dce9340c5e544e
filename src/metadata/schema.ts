/**
 * The metadata database's schema, as an ordered list of migrations. `PRAGMA user_version` holds
 * the number of migrations applied; opening a database runs the missing ones, each in the same
 * transaction as the version bump, so a crash mid-migration leaves the previous version intact.
 *
 * Append only: never edit a migration that has shipped, add a new one. A database whose version is
 * newer than this code knows is refused (FailedPrecondition) rather than half-understood.
 *
 * Dates are integer milliseconds since the epoch; maps and lists are JSON text.
 */
import type { Migration } from '../sqlite.ts';

export const MIGRATIONS: readonly Migration[] = [
  // 1: images, leases, containers, generations, object status, events, locks.
  (db) =>
    db.exec(`
      CREATE TABLE images (
        name              TEXT PRIMARY KEY,
        target_digest     TEXT NOT NULL,
        target_media_type TEXT NOT NULL,
        target_size       INTEGER NOT NULL,
        manifest_digest   TEXT NOT NULL,
        config_digest     TEXT NOT NULL,
        platform          TEXT NOT NULL,
        size              INTEGER NOT NULL,
        snapshotter       TEXT,
        chain_ids         TEXT,
        labels            TEXT NOT NULL DEFAULT '{}',
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE leases (
        id         TEXT PRIMARY KEY,
        expires_at INTEGER,
        labels     TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE lease_resources (
        lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        type     TEXT NOT NULL,
        key      TEXT NOT NULL,
        PRIMARY KEY (lease_id, type, key)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE containers (
        name         TEXT PRIMARY KEY,
        spec_hash    TEXT NOT NULL,
        spec         TEXT NOT NULL,
        image        TEXT NOT NULL,
        image_digest TEXT NOT NULL,
        snapshotter  TEXT NOT NULL,
        snapshot_key TEXT NOT NULL,
        generation   INTEGER NOT NULL,
        labels       TEXT NOT NULL DEFAULT '{}',
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE generations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        revision   TEXT,
        applied_at INTEGER NOT NULL,
        desired    TEXT NOT NULL,
        result     TEXT NOT NULL CHECK (result IN ('pending', 'applied', 'failed')),
        message    TEXT
      ) STRICT;

      CREATE TABLE object_status (
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('Ready', 'Reconciling', 'Stalled')),
        reason      TEXT NOT NULL,
        message     TEXT NOT NULL,
        revision    TEXT,
        generation  INTEGER,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
      ) STRICT;

      CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        time    INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        name    TEXT NOT NULL,
        type    TEXT NOT NULL CHECK (type IN ('Normal', 'Warning')),
        reason  TEXT NOT NULL,
        message TEXT NOT NULL
      ) STRICT;
      CREATE INDEX events_by_object ON events (kind, name, id);

      CREATE TABLE locks (
        name        TEXT PRIMARY KEY,
        token       TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        holder      TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) STRICT;
    `),

  // 2: rollouts. Generations may be `progressing` (applied, its changed containers not yet
  // confirmed) or `rolledback`, and remember which containers they changed and the hash of what
  // they asked for (a rolled-back desired state is never retried by itself). The containers a
  // rollout replaced are kept, stopped, with their writable layers, until it is confirmed.
  // `settings` holds small persistent flags (a rollout held by `berth rollout undo`).
  (db) =>
    db.exec(`
      CREATE TABLE generations_v2 (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        revision          TEXT,
        applied_at        INTEGER NOT NULL,
        desired           TEXT NOT NULL,
        result            TEXT NOT NULL CHECK (result IN ('pending', 'progressing', 'applied', 'failed', 'rolledback')),
        message           TEXT,
        desired_hash      TEXT,
        changed           TEXT NOT NULL DEFAULT '[]',
        progressing_since INTEGER
      ) STRICT;
      INSERT INTO generations_v2 (id, revision, applied_at, desired, result, message)
        SELECT id, revision, applied_at, desired, result, message FROM generations;
      DROP TABLE generations;
      ALTER TABLE generations_v2 RENAME TO generations;

      CREATE TABLE retired_containers (
        name       TEXT PRIMARY KEY,
        record     TEXT NOT NULL,
        image      TEXT,
        retired_by INTEGER NOT NULL,
        retired_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `),

  // 3: events may carry details (a JSON object of strings: the device status they report, …), for
  // the webhook (src/notify/), which delivers the events table itself in id order.
  (db) => db.exec('ALTER TABLE events ADD COLUMN details TEXT'),
];

export const SCHEMA_VERSION = MIGRATIONS.length;
