/**
 * berth's crash-safe record: images, leases, containers, generations, object status, events and
 * the reconcile lock, in one SQLite file (`<root>/metadata.db`) over `node:sqlite`.
 *
 * Why it survives power cuts: WAL journal with `synchronous=FULL` (a committed transaction is on
 * disk before `COMMIT` returns) and every multi-row change inside one transaction, so a crash at any
 * instant leaves either all of a change or none of it. Two processes (the CLI `apply` and the daemon
 * `run`) may open the same file: writers take the database lock with `BEGIN IMMEDIATE` and wait up
 * to `busyTimeoutMs` for each other instead of failing.
 *
 * Every method is synchronous (node:sqlite is); a transaction body must be synchronous too, so no
 * `await` can ever split a transaction. Dates are `Date` in the API, integer ms on disk.
 *
 * @example
 *   const md = Metadata.open(`${root}/metadata.db`);
 *   md.transaction(() => {
 *     md.createLease('pull-1', { expiresAt: new Date(Date.now() + 3_600_000) });
 *     md.addLeaseResource('pull-1', { type: 'content', key: 'sha256:…' });
 *   });
 *   md.putImage({ name: 'docker.io/library/busybox:latest', target, manifestDigest, configDigest, platform, size, labels: {} });
 *   md.deleteLease('pull-1');
 */
import { processAlive } from '../process-alive.ts';
import { randomUUID } from 'node:crypto';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors.ts';
import { isConstraintViolation, SqliteDatabase, type Migration, type Row, type Statement } from '../sqlite.ts';
import { MIGRATIONS } from './schema.ts';
import { CONTAINER_SPEC, decodeJson, DESIRED_STATE, encodeJson, unwrap, wrap } from './versioned-json.ts';

// ---------------------------------------------------------------------------------------- records

export interface Descriptor {
  digest: string;
  mediaType: string;
  size: number;
}

export interface ImageRecord {
  /** Normalised reference, e.g. "127.0.0.1:5000/busybox:latest". */
  name: string;
  /** What the name resolved to (an index or a manifest). */
  target: Descriptor;
  /** The platform-specific manifest chosen. */
  manifestDigest: string;
  configDigest: string;
  /** "linux/amd64" or "linux/arm/v7". */
  platform: string;
  /** Bytes of manifest + config + compressed layers. */
  size: number;
  /** Set once unpacked. */
  snapshotter?: string;
  /** Committed layer snapshots, base first; set once unpacked. */
  chainIds?: string[];
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export type ImageInput = Omit<ImageRecord, 'createdAt' | 'updatedAt'> & Partial<Pick<ImageRecord, 'createdAt'>>;

export type LeaseResourceType = 'content' | 'snapshot' | 'ingest';

export interface LeaseResource {
  /** `content`: a blob digest; `snapshot`: `<snapshotter>/<key>`; `ingest`: an ingest ref. */
  type: LeaseResourceType;
  key: string;
}

export interface Lease {
  id: string;
  /** Absent: never expires (the holder must delete it). */
  expiresAt?: Date;
  labels: Record<string, string>;
  createdAt: Date;
  resources: LeaseResource[];
}

export interface ContainerRecord {
  name: string;
  /** Hash of the normalised container spec plus the image digest: what change detection compares. */
  specHash: string;
  /** The normalised container spec (as JSON-able data), stored versioned (see versioned-json.ts: CONTAINER_SPEC). */
  spec: unknown;
  /** The image reference or `Image` name the spec asked for. */
  image: string;
  /** The image manifest digest the container was created from. */
  imageDigest: string;
  snapshotter: string;
  /** The writable (active) snapshot holding the container's root filesystem. */
  snapshotKey: string;
  /** Generation id that created or last updated this container. */
  generation: number;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export type ContainerInput = Omit<ContainerRecord, 'createdAt' | 'updatedAt' | 'labels'> & Partial<Pick<ContainerRecord, 'createdAt' | 'labels'>>;

/**
 * - `pending`: being applied (steps still to do);
 * - `progressing`: applied; the containers it changed are not confirmed yet (see reconcile/rollout);
 * - `applied`: confirmed: the last good desired state, started at boot and rolled back to;
 * - `failed`: could not be applied and there was nothing confirmed to roll back to;
 * - `rolledback`: its changes failed and the last confirmed generation was put back.
 */
export type GenerationResult = 'pending' | 'progressing' | 'applied' | 'failed' | 'rolledback';

/** One apply of a desired state: what was asked for, from which revision, and how it ended. */
export interface Generation {
  id: number;
  /** Git commit of the manifests directory, if it is a git checkout. */
  revision?: string;
  appliedAt: Date;
  /** The desired state as JSON-able data, stored versioned (see versioned-json.ts: DESIRED_STATE). */
  desired: unknown;
  result: GenerationResult;
  message?: string;
  /** `canonicalHash` of the desired state: a rolled-back one is not retried until it changes. */
  desiredHash?: string;
  /** Containers this generation created or replaced: what must be confirmed before it is. */
  changed: string[];
  /** When it became `progressing`. */
  progressingSince?: Date;
}

/**
 * A container a rollout replaced: stopped, its runtime bundle deleted, its writable snapshot kept
 * (a GC root) until the rollout is confirmed, so that a rollback brings it back as it was.
 */
export interface RetiredContainer {
  /** The container record as it was (name, spec hash, image digest, snapshot key, …). */
  record: ContainerRecord;
  /** The image record (by name) as it was, if the rollout moved it to another digest. */
  image?: ImageRecord;
  /** The generation whose rollout replaced it. */
  retiredBy: number;
  retiredAt: Date;
}

export interface ObjectRef {
  /** `Container`, `Image`, `Volume`, … */
  kind: string;
  name: string;
}

export type ObjectState = 'Ready' | 'Reconciling' | 'Stalled';

/** What `berth status` shows for one object. */
export interface ObjectStatus extends ObjectRef {
  state: ObjectState;
  reason: string;
  message: string;
  lastAppliedRevision?: string;
  generation?: number;
  updatedAt: Date;
}

/** Absent optional fields keep their stored value; `null` clears them. */
export interface ObjectStatusInput extends ObjectRef {
  state: ObjectState;
  reason: string;
  message: string;
  lastAppliedRevision?: string | null;
  generation?: number | null;
}

export type EventType = 'Normal' | 'Warning';

export interface BerthEvent {
  id: number;
  time: Date;
  object: ObjectRef;
  type: EventType;
  reason: string;
  message: string;
  /** Structured facts beside the message (e.g. the device status a `Device` event reports). */
  details?: Record<string, string>;
}

/** A row of the `locks` table: who holds a named lock, until when. */
export interface LockInfo {
  name: string;
  /** Random per acquisition: only the acquirer can renew or release. */
  token: string;
  pid: number;
  holder: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export type LockAttempt = { acquired: true; lock: LockInfo } | { acquired: false; heldBy: LockInfo };

export interface MetadataOptions {
  /** How long a writer waits for another process's transaction (ms). Default 10 s. */
  busyTimeoutMs?: number;
  /** Events kept (oldest dropped first). Default 1000. */
  maxEvents?: number;
  /** Generations kept besides the current and previous applied ones. Default 50. */
  maxGenerations?: number;
  /** The clock, for tests. */
  now?: () => Date;
  /** Whether a pid is alive (for lock takeover), for tests. Default: `process.kill(pid, 0)`. */
  isProcessAlive?: (pid: number) => boolean;
  /** The schema's migrations, for tests of the migration machinery. Default: schema.ts's. */
  migrations?: readonly Migration[];
}

// ------------------------------------------------------------------------------------------ class

export class Metadata {
  readonly path: string;
  private readonly sql: SqliteDatabase;
  private readonly now: () => Date;
  private readonly maxEvents: number;
  private readonly maxGenerations: number;
  private readonly isProcessAlive: (pid: number) => boolean;

  private constructor(sql: SqliteDatabase, opts: MetadataOptions) {
    this.path = sql.path;
    this.sql = sql;
    this.now = opts.now ?? (() => new Date());
    this.maxEvents = opts.maxEvents ?? 1000;
    this.maxGenerations = opts.maxGenerations ?? 50;
    this.isProcessAlive = opts.isProcessAlive ?? processAlive;
  }

  /**
   * Open (creating if needed) the database at `path` and bring its schema up to date.
   * FailedPrecondition if the file was written by a newer berth; Corrupt if SQLite finds it damaged.
   */
  static open(path: string, opts: MetadataOptions = {}): Metadata {
    const sql = SqliteDatabase.open(path, {
      label: 'metadata',
      migrations: opts.migrations ?? MIGRATIONS,
      busyTimeoutMs: opts.busyTimeoutMs,
      foreignKeys: true,
    });
    return new Metadata(sql, opts);
  }

  close(): void {
    this.sql.close();
  }

  /** The schema version of the open database (= number of migrations applied). */
  schemaVersion(): number {
    return this.sql.schemaVersion();
  }

  /**
   * A number that changes whenever another connection (another berth process) commits to the
   * database (`PRAGMA data_version`): two equal readings mean nobody else wrote in between.
   */
  dataVersion(): number {
    return Number(this.stmt('PRAGMA data_version').get()!.data_version);
  }

  /** `PRAGMA integrity_check` + `foreign_key_check`: an empty list means the file is sound. */
  checkIntegrity(): string[] {
    return this.sql.checkIntegrity();
  }

  /**
   * Run `fn` in one transaction (`BEGIN IMMEDIATE`); nested calls are savepoints, and `fn` must be
   * synchronous (see src/sqlite.ts).
   */
  transaction<T>(fn: () => T): T {
    return this.sql.transaction(fn);
  }

  // ---------------------------------------------------------------------------------- images

  /** Insert or replace an image record; `createdAt` is kept from an existing record unless given. */
  putImage(rec: ImageInput): ImageRecord {
    const now = this.now();
    return this.transaction(() => {
      const existing = this.getImage(rec.name);
      const createdAt = rec.createdAt ?? existing?.createdAt ?? now;
      this.stmt(
        `INSERT OR REPLACE INTO images (name, target_digest, target_media_type, target_size, manifest_digest,
           config_digest, platform, size, snapshotter, chain_ids, labels, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        rec.name,
        rec.target.digest,
        rec.target.mediaType,
        rec.target.size,
        rec.manifestDigest,
        rec.configDigest,
        rec.platform,
        rec.size,
        rec.snapshotter ?? null,
        rec.chainIds ? JSON.stringify(rec.chainIds) : null,
        JSON.stringify(rec.labels ?? {}),
        createdAt.getTime(),
        now.getTime(),
      );
      return this.getImage(rec.name)!;
    });
  }

  getImage(name: string): ImageRecord | undefined {
    const row = this.stmt('SELECT * FROM images WHERE name = ?').get(name);
    return row ? imageFromRow(row) : undefined;
  }

  listImages(): ImageRecord[] {
    return this.stmt('SELECT * FROM images ORDER BY name').all().map(imageFromRow);
  }

  deleteImage(name: string): boolean {
    return Number(this.stmt('DELETE FROM images WHERE name = ?').run(name).changes) > 0;
  }

  // ---------------------------------------------------------------------------------- leases

  /** AlreadyExists if a lease with this id exists. */
  createLease(id: string, opts: { expiresAt?: Date; labels?: Record<string, string> } = {}): void {
    if (!id) throw invalidArgument('lease id must not be empty');
    try {
      this.stmt('INSERT INTO leases (id, expires_at, labels, created_at) VALUES (?, ?, ?, ?)').run(
        id,
        opts.expiresAt ? opts.expiresAt.getTime() : null,
        JSON.stringify(opts.labels ?? {}),
        this.now().getTime(),
      );
    } catch (err) {
      if (isConstraintViolation(err)) throw alreadyExists(`lease ${id} already exists`, { cause: err });
      throw err;
    }
  }

  /** Idempotent. NotFound if the lease does not exist. */
  addLeaseResource(leaseId: string, resource: LeaseResource): void {
    if (!['content', 'snapshot', 'ingest'].includes(resource.type)) {
      throw invalidArgument(`lease ${leaseId}: unknown resource type "${resource.type}"`);
    }
    try {
      this.stmt('INSERT OR IGNORE INTO lease_resources (lease_id, type, key) VALUES (?, ?, ?)').run(leaseId, resource.type, resource.key);
    } catch (err) {
      if (isConstraintViolation(err)) throw notFound(`lease ${leaseId} not found (adding ${resource.type} ${resource.key})`, { cause: err });
      throw err;
    }
  }

  /** Idempotent: removing a resource that is not there is not an error. */
  deleteLeaseResource(leaseId: string, resource: LeaseResource): void {
    this.stmt('DELETE FROM lease_resources WHERE lease_id = ? AND type = ? AND key = ?').run(leaseId, resource.type, resource.key);
  }

  /** Deletes the lease and its resource list (idempotent). What it protected becomes collectable. */
  deleteLease(id: string): void {
    this.transaction(() => {
      this.stmt('DELETE FROM lease_resources WHERE lease_id = ?').run(id);
      this.stmt('DELETE FROM leases WHERE id = ?').run(id);
    });
  }

  getLease(id: string): Lease | undefined {
    const row = this.stmt('SELECT * FROM leases WHERE id = ?').get(id);
    return row ? this.leaseFromRow(row) : undefined;
  }

  listLeases(): Lease[] {
    return this.stmt('SELECT * FROM leases ORDER BY id')
      .all()
      .map((row) => this.leaseFromRow(row));
  }

  /** Leases that have not expired at `at` (default now): the ones GC must honour. */
  activeLeases(at: Date = this.now()): Lease[] {
    return this.listLeases().filter((l) => !l.expiresAt || l.expiresAt.getTime() > at.getTime());
  }

  /** Delete every lease that expired before `at`; returns their ids. */
  deleteExpiredLeases(at: Date = this.now()): string[] {
    return this.transaction(() => {
      const ids = (this.stmt('SELECT id FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ?').all(at.getTime()) as Array<{ id: string }>).map(
        (r) => r.id,
      );
      for (const id of ids) this.deleteLease(id);
      return ids;
    });
  }

  private leaseFromRow(row: Row): Lease {
    const resources = (
      this.stmt('SELECT type, key FROM lease_resources WHERE lease_id = ? ORDER BY type, key').all(row.id as string) as Array<{
        type: LeaseResourceType;
        key: string;
      }>
    ).map((r) => ({ type: r.type, key: r.key }));
    return {
      id: row.id as string,
      expiresAt: row.expires_at == null ? undefined : new Date(row.expires_at as number),
      labels: JSON.parse(row.labels as string),
      createdAt: new Date(row.created_at as number),
      resources,
    };
  }

  // ------------------------------------------------------------------------------ containers

  /** Insert or replace a container record; `createdAt` is kept from an existing record unless given. */
  putContainer(rec: ContainerInput): ContainerRecord {
    const now = this.now();
    return this.transaction(() => {
      const existing = this.getContainer(rec.name);
      const createdAt = rec.createdAt ?? existing?.createdAt ?? now;
      this.stmt(
        `INSERT OR REPLACE INTO containers (name, spec_hash, spec, image, image_digest, snapshotter, snapshot_key,
           generation, labels, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        rec.name,
        rec.specHash,
        encodeJson(CONTAINER_SPEC, rec.spec),
        rec.image,
        rec.imageDigest,
        rec.snapshotter,
        rec.snapshotKey,
        rec.generation,
        JSON.stringify(rec.labels ?? {}),
        createdAt.getTime(),
        now.getTime(),
      );
      return this.getContainer(rec.name)!;
    });
  }

  getContainer(name: string): ContainerRecord | undefined {
    const row = this.stmt('SELECT * FROM containers WHERE name = ?').get(name);
    return row ? containerFromRow(row) : undefined;
  }

  listContainers(): ContainerRecord[] {
    return this.stmt('SELECT * FROM containers ORDER BY name').all().map(containerFromRow);
  }

  deleteContainer(name: string): boolean {
    return Number(this.stmt('DELETE FROM containers WHERE name = ?').run(name).changes) > 0;
  }

  // ----------------------------------------------------------------------------- generations

  /**
   * Record a generation (typically `pending` before an apply, then `setGenerationResult`). Old
   * generations beyond `maxGenerations` are pruned, but never the current or previous applied one.
   */
  addGeneration(g: { revision?: string; desired: unknown; result?: GenerationResult; message?: string; appliedAt?: Date; desiredHash?: string }): Generation {
    return this.transaction(() => {
      const info = this.stmt('INSERT INTO generations (revision, applied_at, desired, result, message, desired_hash) VALUES (?, ?, ?, ?, ?, ?)').run(
        g.revision ?? null,
        (g.appliedAt ?? this.now()).getTime(),
        encodeJson(DESIRED_STATE, g.desired),
        g.result ?? 'pending',
        g.message ?? null,
        g.desiredHash ?? null,
      );
      const id = Number(info.lastInsertRowid);
      this.pruneGenerations();
      return this.getGeneration(id)!;
    });
  }

  /** NotFound if the generation does not exist. */
  setGenerationResult(id: number, result: GenerationResult, message?: string): Generation {
    const info = this.stmt('UPDATE generations SET result = ?, message = ?, applied_at = ? WHERE id = ?').run(
      result,
      message ?? null,
      this.now().getTime(),
      id,
    );
    if (Number(info.changes) === 0) throw notFound(`generation ${id} not found`);
    return this.getGeneration(id)!;
  }

  /** Add containers to what generation `id` changed (a rollout confirms or rolls back all of them). */
  addChangedContainers(id: number, names: string[]): Generation {
    return this.transaction(() => {
      const g = this.getGeneration(id);
      if (!g) throw notFound(`generation ${id} not found`);
      const changed = [...new Set([...g.changed, ...names])].sort();
      this.stmt('UPDATE generations SET changed = ? WHERE id = ?').run(JSON.stringify(changed), id);
      return this.getGeneration(id)!;
    });
  }

  /** Generation `id` is applied and now waits for its changed containers to be confirmed. */
  markProgressing(id: number, since: Date = this.now()): Generation {
    const info = this.stmt("UPDATE generations SET result = 'progressing', progressing_since = ?, message = NULL WHERE id = ?").run(since.getTime(), id);
    if (Number(info.changes) === 0) throw notFound(`generation ${id} not found`);
    return this.getGeneration(id)!;
  }

  getGeneration(id: number): Generation | undefined {
    const row = this.stmt('SELECT * FROM generations WHERE id = ?').get(id);
    return row ? generationFromRow(row) : undefined;
  }

  /** The last generation that applied successfully: what berth starts at boot, offline. */
  currentGeneration(): Generation | undefined {
    const row = this.stmt("SELECT * FROM generations WHERE result = 'applied' ORDER BY id DESC LIMIT 1").get();
    return row ? generationFromRow(row) : undefined;
  }

  /** The applied generation before the current one (GC roots include it, for a quick rollback). */
  previousGeneration(): Generation | undefined {
    const row = this.stmt("SELECT * FROM generations WHERE result = 'applied' ORDER BY id DESC LIMIT 1 OFFSET 1").get();
    return row ? generationFromRow(row) : undefined;
  }

  /** The most recent generation whatever its result (e.g. a `failed` one newer than the current). */
  latestGeneration(): Generation | undefined {
    const row = this.stmt('SELECT * FROM generations ORDER BY id DESC LIMIT 1').get();
    return row ? generationFromRow(row) : undefined;
  }

  /** The newest rolled-back generation that asked for the desired state with this hash. */
  rolledBackGeneration(desiredHash: string): Generation | undefined {
    const row = this.stmt("SELECT * FROM generations WHERE result = 'rolledback' AND desired_hash = ? ORDER BY id DESC LIMIT 1").get(desiredHash);
    return row ? generationFromRow(row) : undefined;
  }

  /** Newest first. */
  listGenerations(limit = 100): Generation[] {
    return this.stmt('SELECT * FROM generations ORDER BY id DESC LIMIT ?').all(limit).map(generationFromRow);
  }

  private pruneGenerations(): void {
    this.stmt(
      `DELETE FROM generations
       WHERE id NOT IN (SELECT id FROM generations ORDER BY id DESC LIMIT ?)
         AND id NOT IN (SELECT id FROM generations WHERE result = 'applied' ORDER BY id DESC LIMIT 2)`,
    ).run(this.maxGenerations);
  }

  // ------------------------------------------------------------------------ retired containers

  /** Keep (or replace) the retired container of `rec.record.name`. */
  putRetiredContainer(r: Omit<RetiredContainer, 'retiredAt'> & { retiredAt?: Date }): void {
    this.stmt('INSERT OR REPLACE INTO retired_containers (name, record, image, retired_by, retired_at) VALUES (?, ?, ?, ?, ?)').run(
      r.record.name,
      JSON.stringify({ ...r.record, spec: wrap(CONTAINER_SPEC, r.record.spec) }),
      r.image ? JSON.stringify(r.image) : null,
      r.retiredBy,
      (r.retiredAt ?? this.now()).getTime(),
    );
  }

  getRetiredContainer(name: string): RetiredContainer | undefined {
    const row = this.stmt('SELECT * FROM retired_containers WHERE name = ?').get(name);
    return row ? retiredFromRow(row) : undefined;
  }

  listRetiredContainers(): RetiredContainer[] {
    return this.stmt('SELECT * FROM retired_containers ORDER BY name').all().map(retiredFromRow);
  }

  deleteRetiredContainer(name: string): boolean {
    return Number(this.stmt('DELETE FROM retired_containers WHERE name = ?').run(name).changes) > 0;
  }

  // ---------------------------------------------------------------------------------- settings

  getSetting(key: string): string | undefined {
    const row = this.stmt('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setSetting(key: string, value: string): void {
    this.stmt('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)').run(key, value);
  }

  deleteSetting(key: string): void {
    this.stmt('DELETE FROM settings WHERE key = ?').run(key);
  }

  // ---------------------------------------------------------------------------- object status

  /**
   * Set an object's status. Nothing is written when nothing changed (the daemon sets every object's
   * status every turn; on an SD card an unchanged row rewritten twice a minute is wear for nothing),
   * so `updatedAt` is when the status last changed.
   */
  setStatus(s: ObjectStatusInput): ObjectStatus {
    return this.transaction(() => {
      const old = this.getStatus(s.kind, s.name);
      const revision = s.lastAppliedRevision === undefined ? (old?.lastAppliedRevision ?? null) : s.lastAppliedRevision;
      const generation = s.generation === undefined ? (old?.generation ?? null) : s.generation;
      if (old && statusUnchanged(old, s)) return old;
      this.stmt(
        `INSERT OR REPLACE INTO object_status (kind, name, state, reason, message, revision, generation, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(s.kind, s.name, s.state, s.reason, s.message, revision, generation, this.now().getTime());
      return this.getStatus(s.kind, s.name)!;
    });
  }

  getStatus(kind: string, name: string): ObjectStatus | undefined {
    const row = this.stmt('SELECT * FROM object_status WHERE kind = ? AND name = ?').get(kind, name);
    return row ? statusFromRow(row) : undefined;
  }

  /** Ordered by kind, then name. */
  listStatus(): ObjectStatus[] {
    return this.stmt('SELECT * FROM object_status ORDER BY kind, name').all().map(statusFromRow);
  }

  deleteStatus(kind: string, name: string): boolean {
    return Number(this.stmt('DELETE FROM object_status WHERE kind = ? AND name = ?').run(kind, name).changes) > 0;
  }

  // ---------------------------------------------------------------------------------- events

  /** Append an event; only the newest `maxEvents` are kept. */
  addEvent(e: { object: ObjectRef; type: EventType; reason: string; message: string; time?: Date; details?: Record<string, string> }): BerthEvent {
    return this.transaction(() => {
      const info = this.stmt('INSERT INTO events (time, kind, name, type, reason, message, details) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
        (e.time ?? this.now()).getTime(),
        e.object.kind,
        e.object.name,
        e.type,
        e.reason,
        e.message,
        e.details ? JSON.stringify(e.details) : null,
      );
      const id = Number(info.lastInsertRowid);
      // AUTOINCREMENT ids only grow, so "the newest N" is an id range: one indexed delete.
      this.stmt('DELETE FROM events WHERE id <= ?').run(id - this.maxEvents);
      return eventFromRow(this.stmt('SELECT * FROM events WHERE id = ?').get(id)!);
    });
  }

  /** The newest `limit` events (default 100), returned oldest first; optionally for one object, or after an id. */
  listEvents(opts: { object?: ObjectRef; limit?: number; afterId?: number } = {}): BerthEvent[] {
    const limit = opts.limit ?? 100;
    const after = opts.afterId ?? 0;
    const rows = opts.object
      ? this.stmt('SELECT * FROM events WHERE kind = ? AND name = ? AND id > ? ORDER BY id DESC LIMIT ?').all(opts.object.kind, opts.object.name, after, limit)
      : this.stmt('SELECT * FROM events WHERE id > ? ORDER BY id DESC LIMIT ?').all(after, limit);
    return rows.map(eventFromRow).reverse();
  }

  /** The oldest `limit` events with an id above `afterId`, oldest first: a reader that goes through them all in order. */
  eventsAfter(afterId: number, limit: number): BerthEvent[] {
    return this.stmt('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit).map(eventFromRow);
  }

  /** The id of the newest event (0 when there is none); ids only grow. */
  lastEventId(): number {
    return (this.stmt('SELECT COALESCE(MAX(id), 0) AS id FROM events').get() as { id: number }).id;
  }

  // ----------------------------------------------------------------------------------- locks

  /**
   * Try to take the named lock (e.g. `reconcile`) for `ttlMs`. Taken over if free, expired, or
   * held by a process that no longer exists (a `kill -9`'d berth does not wedge the next one).
   * Pids are compared on this host: the CLI and the daemon must share a pid namespace.
   * The holder renews it (`renewLock`) well before `ttlMs` passes while it works.
   */
  tryAcquireLock(name: string, opts: { holder: string; ttlMs: number; pid?: number }): LockAttempt {
    const pid = opts.pid ?? process.pid;
    return this.transaction(() => {
      const now = this.now().getTime();
      const row = this.stmt('SELECT * FROM locks WHERE name = ?').get(name);
      if (row) {
        const held = lockFromRow(row);
        const stale = held.expiresAt.getTime() <= now || !this.isProcessAlive(held.pid);
        if (!stale) return { acquired: false, heldBy: held };
      }
      const token = randomUUID();
      this.stmt('INSERT OR REPLACE INTO locks (name, token, pid, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        name,
        token,
        pid,
        opts.holder,
        now,
        now + opts.ttlMs,
      );
      return { acquired: true, lock: lockFromRow(this.stmt('SELECT * FROM locks WHERE name = ?').get(name)!) };
    });
  }

  /** Extend a lock we hold. FailedPrecondition if it was lost (expired and taken by another). */
  renewLock(lock: LockInfo, ttlMs: number): LockInfo {
    const expires = this.now().getTime() + ttlMs;
    const info = this.stmt('UPDATE locks SET expires_at = ? WHERE name = ? AND token = ?').run(expires, lock.name, lock.token);
    if (Number(info.changes) === 0) {
      const now = this.getLock(lock.name);
      throw failedPrecondition(`lock ${lock.name} was lost${now ? ` to ${now.holder} (pid ${now.pid})` : ''}; it expired at ${lock.expiresAt.toISOString()}`);
    }
    return { ...lock, expiresAt: new Date(expires) };
  }

  /** Release a lock we hold (idempotent; a lock taken over by another is left alone). */
  releaseLock(lock: LockInfo): void {
    this.stmt('DELETE FROM locks WHERE name = ? AND token = ?').run(lock.name, lock.token);
  }

  getLock(name: string): LockInfo | undefined {
    const row = this.stmt('SELECT * FROM locks WHERE name = ?').get(name);
    return row ? lockFromRow(row) : undefined;
  }

  // --------------------------------------------------------------------------------- helpers

  private stmt(sql: string): Statement {
    return this.sql.stmt(sql);
  }
}

/** Whether setting `s` over `old` would change nothing (an unset revision or generation keeps the old one). */
export function statusUnchanged(old: ObjectStatus, s: ObjectStatusInput): boolean {
  return (
    old.state === s.state &&
    old.reason === s.reason &&
    old.message === s.message &&
    (s.lastAppliedRevision === undefined || (old.lastAppliedRevision ?? null) === s.lastAppliedRevision) &&
    (s.generation === undefined || (old.generation ?? null) === s.generation)
  );
}

// ------------------------------------------------------------------------------- row mapping

function imageFromRow(row: Row): ImageRecord {
  const rec: ImageRecord = {
    name: row.name as string,
    target: { digest: row.target_digest as string, mediaType: row.target_media_type as string, size: row.target_size as number },
    manifestDigest: row.manifest_digest as string,
    configDigest: row.config_digest as string,
    platform: row.platform as string,
    size: row.size as number,
    labels: JSON.parse(row.labels as string),
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
  };
  if (row.snapshotter != null) rec.snapshotter = row.snapshotter as string;
  if (row.chain_ids != null) rec.chainIds = JSON.parse(row.chain_ids as string);
  return rec;
}

function containerFromRow(row: Row): ContainerRecord {
  return {
    name: row.name as string,
    specHash: row.spec_hash as string,
    spec: decodeJson(CONTAINER_SPEC, row.spec as string, `metadata: container ${row.name}`),
    image: row.image as string,
    imageDigest: row.image_digest as string,
    snapshotter: row.snapshotter as string,
    snapshotKey: row.snapshot_key as string,
    generation: row.generation as number,
    labels: JSON.parse(row.labels as string),
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
  };
}

function retiredFromRow(row: Row): RetiredContainer {
  const record = JSON.parse(row.record as string);
  const spec = unwrap(CONTAINER_SPEC, record.spec, `metadata: retired container ${row.name}`);
  const r: RetiredContainer = {
    record: { ...record, spec, createdAt: new Date(record.createdAt), updatedAt: new Date(record.updatedAt) },
    retiredBy: row.retired_by as number,
    retiredAt: new Date(row.retired_at as number),
  };
  if (row.image != null) {
    const image = JSON.parse(row.image as string);
    r.image = { ...image, createdAt: new Date(image.createdAt), updatedAt: new Date(image.updatedAt) };
  }
  return r;
}

function generationFromRow(row: Row): Generation {
  const g: Generation = {
    id: row.id as number,
    appliedAt: new Date(row.applied_at as number),
    desired: decodeJson(DESIRED_STATE, row.desired as string, `metadata: generation ${row.id}`),
    result: row.result as GenerationResult,
    changed: JSON.parse((row.changed as string | undefined) ?? '[]'),
  };
  if (row.revision != null) g.revision = row.revision as string;
  if (row.message != null) g.message = row.message as string;
  if (row.desired_hash != null) g.desiredHash = row.desired_hash as string;
  if (row.progressing_since != null) g.progressingSince = new Date(row.progressing_since as number);
  return g;
}

function statusFromRow(row: Row): ObjectStatus {
  const s: ObjectStatus = {
    kind: row.kind as string,
    name: row.name as string,
    state: row.state as ObjectState,
    reason: row.reason as string,
    message: row.message as string,
    updatedAt: new Date(row.updated_at as number),
  };
  if (row.revision != null) s.lastAppliedRevision = row.revision as string;
  if (row.generation != null) s.generation = row.generation as number;
  return s;
}

function eventFromRow(row: Row): BerthEvent {
  const e: BerthEvent = {
    id: row.id as number,
    time: new Date(row.time as number),
    object: { kind: row.kind as string, name: row.name as string },
    type: row.type as EventType,
    reason: row.reason as string,
    message: row.message as string,
  };
  if (row.details != null) e.details = JSON.parse(row.details as string);
  return e;
}

function lockFromRow(row: Row): LockInfo {
  return {
    name: row.name as string,
    token: row.token as string,
    pid: row.pid as number,
    holder: row.holder as string,
    acquiredAt: new Date(row.acquired_at as number),
    expiresAt: new Date(row.expires_at as number),
  };
}
