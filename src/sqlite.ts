/**
 * SQLite for berth's records (`metadata.db`, each snapshotter's `metadata.db`) over `node:sqlite`:
 * the one place that opens a database, sets its pragmas, migrates its schema, runs transactions and
 * turns SQLite's errors into error kinds.
 *
 * - Files: created owner-only (0600, and the -wal and -shm SQLite adds), a looser one tightened.
 * - Pragmas: WAL (readers never block the writer) and `synchronous=FULL` (a committed transaction
 *   is on disk before COMMIT returns: power-cut safe); foreign keys when asked.
 * - Busy handling: a writer waits up to `busyTimeoutMs` for another process's transaction
 *   (SQLite's busy handler), and an open that SQLite answers "busy" without calling the handler (a
 *   second process creating the same new file) is retried until that deadline.
 * - Migrations: `PRAGMA user_version` counts the migrations applied; each missing one runs in the
 *   same transaction as its version bump, so a crash mid-migration leaves the previous version. A
 *   file newer than the code knows is refused (FailedPrecondition), never half-understood.
 * - Transactions: `BEGIN IMMEDIATE` (the write lock up front, so two processes never deadlock
 *   upgrading read locks); a nested call is a savepoint.
 * - Errors: BerthErrors naming the database, with SQLite's error as `cause` (`sqliteError`).
 *
 * Every call is synchronous (node:sqlite is), so no `await` can ever split a transaction.
 */
import { mkdirSync } from 'node:fs';
import { DatabaseSync, type SQLInputValue, type StatementResultingChanges } from 'node:sqlite';
import { dirname } from 'node:path';
import { BerthError, failedPrecondition, invalidArgument } from './errors.ts';
import { ensurePrivateDatabase } from './private-file.ts';

/** One schema step; append only: never edit a migration that has shipped, add a new one. */
export type Migration = (db: DatabaseSync) => void;

export type Row = Record<string, SQLInputValue>;

/** A prepared statement whose errors are BerthErrors naming the database. */
export interface Statement {
  run(...params: SQLInputValue[]): StatementResultingChanges;
  get(...params: SQLInputValue[]): Row | undefined;
  all(...params: SQLInputValue[]): Row[];
}

export interface SqliteOptions {
  /** What the file is, for messages: `metadata`, `snapshot metadata`. */
  label: string;
  migrations: readonly Migration[];
  /** How long a writer waits for another process's transaction (ms). Default 10 s. */
  busyTimeoutMs?: number;
  /** Enforce REFERENCES clauses. Default false. */
  foreignKeys?: boolean;
}

// SQLite's primary result codes (extended codes keep them in the low byte).
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_CONSTRAINT = 19;
const SQLITE_NOTADB = 26;

export class SqliteDatabase {
  readonly path: string;
  private readonly label: string;
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, Statement>();
  private depth = 0;

  private constructor(path: string, label: string, db: DatabaseSync) {
    this.path = path;
    this.label = label;
    this.db = db;
  }

  /**
   * Open (creating it and its directory if needed) the database at `path` (or `:memory:`), owner-only
   * (0600, with its -wal and -shm), and bring its schema up to date. FailedPrecondition if a newer
   * berth wrote it; Corrupt if SQLite finds it damaged.
   */
  static open(path: string, opts: SqliteOptions): SqliteDatabase {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true });
      // What berth records (container env values, image names) is nobody else's to read.
      ensurePrivateDatabase(path);
    }
    const timeoutMs = opts.busyTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    // While another process creates the same new file (two commands started at once on a fresh
    // root), SQLite can answer SQLITE_BUSY to the journal-mode change or the first read without
    // calling its busy handler: such an open is tried again until the deadline.
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        return SqliteDatabase.openOnce(path, opts, timeoutMs);
      } catch (err) {
        if (!isBusy(err) || Date.now() + delay > deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
      }
    }
  }

  private static openOnce(path: string, opts: SqliteOptions, timeoutMs: number): SqliteDatabase {
    const cannotOpen = `cannot open ${opts.label} database ${path}`;
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: timeoutMs, enableForeignKeyConstraints: opts.foreignKeys ?? false });
    } catch (err) {
      throw sqliteError(err, cannotOpen);
    }
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      const sql = new SqliteDatabase(path, opts.label, db);
      sql.migrate(opts.migrations);
      return sql;
    } catch (err) {
      db.close();
      throw sqliteError(err, cannotOpen);
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** The schema version of the open database (= number of migrations applied). */
  schemaVersion(): number {
    return (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  }

  /** `PRAGMA integrity_check` + `foreign_key_check`: an empty list means the file is sound. */
  checkIntegrity(): string[] {
    const problems: string[] = [];
    try {
      for (const row of this.db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>) {
        if (row.integrity_check !== 'ok') problems.push(row.integrity_check);
      }
      for (const row of this.db.prepare('PRAGMA foreign_key_check').all()) problems.push(`foreign key: ${JSON.stringify(row)}`);
    } catch (err) {
      problems.push(this.error(err).message);
    }
    return problems;
  }

  private migrate(migrations: readonly Migration[]): void {
    const version = this.schemaVersion();
    if (version > migrations.length) {
      throw failedPrecondition(
        `${this.label} database ${this.path} has schema version ${version}, newer than this berth understands (${migrations.length}); upgrade berth`,
      );
    }
    for (let v = version; v < migrations.length; v++) {
      this.transaction(() => {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        if (this.schemaVersion() !== v) return;
        migrations[v]!(this.db);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  /**
   * Run `fn` in one transaction. Nested calls join the outer transaction as a savepoint: an error
   * inside a nested call undoes only that call, if the caller catches it. `fn` must be
   * synchronous; a returned promise is refused and the transaction rolled back.
   */
  transaction<T>(fn: () => T): T {
    const nested = this.depth > 0;
    const savepoint = `sp${this.depth}`;
    try {
      this.db.exec(nested ? `SAVEPOINT ${savepoint}` : 'BEGIN IMMEDIATE');
    } catch (err) {
      throw this.error(err, 'cannot begin a transaction');
    }
    this.depth++;
    let result: T;
    try {
      result = fn();
      if (result instanceof Promise) {
        result.catch(() => {}); // its failure is reported through the throw below
        throw invalidArgument(`${this.label} transaction: the body must be synchronous (it returned a promise)`);
      }
    } catch (err) {
      this.depth--;
      this.rollback(nested, savepoint);
      throw isSqliteError(err) ? this.error(err) : err;
    }
    this.depth--;
    try {
      this.db.exec(nested ? `RELEASE ${savepoint}` : 'COMMIT');
    } catch (err) {
      this.rollback(nested, savepoint);
      throw this.error(err, 'cannot commit');
    }
    return result;
  }

  private rollback(nested: boolean, savepoint: string): void {
    try {
      this.db.exec(nested ? `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}` : 'ROLLBACK');
    } catch {
      // SQLite may already have rolled back (e.g. after SQLITE_FULL); nothing more to undo.
    }
  }

  /** A cached prepared statement whose errors are BerthErrors naming the database (see `sqliteError`). */
  stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      let prepared: ReturnType<DatabaseSync['prepare']>;
      try {
        prepared = this.db.prepare(sql);
      } catch (err) {
        throw this.error(err);
      }
      const guard =
        <A extends unknown[], R>(f: (...a: A) => R) =>
        (...a: A): R => {
          try {
            return f(...a);
          } catch (err) {
            throw this.error(err);
          }
        };
      s = {
        run: guard((...p: SQLInputValue[]) => prepared.run(...p)),
        get: guard((...p: SQLInputValue[]) => prepared.get(...p) as Row | undefined),
        all: guard((...p: SQLInputValue[]) => prepared.all(...p) as Row[]),
      };
      this.statements.set(sql, s);
    }
    return s;
  }

  private error(err: unknown, doing?: string): BerthError {
    return sqliteError(err, `${this.label} ${this.path}${doing ? `: ${doing}` : ''}`);
  }
}

/** SQLite's primary result code of `err`, raw or wrapped (as `cause`) by `sqliteError`; -1 if it is none. */
function primaryCode(err: unknown): number {
  const e = (err instanceof BerthError ? err.cause : err) as { errcode?: unknown } | undefined;
  return typeof e?.errcode === 'number' ? e.errcode & 0xff : -1;
}

function isSqliteError(err: unknown): boolean {
  return !(err instanceof BerthError) && primaryCode(err) !== -1;
}

/** Another connection holds the lock (SQLITE_BUSY or SQLITE_LOCKED), raw or wrapped. */
export function isBusy(err: unknown): boolean {
  const code = primaryCode(err);
  return code === SQLITE_BUSY || code === SQLITE_LOCKED;
}

/** A UNIQUE, CHECK, NOT NULL or foreign-key constraint failed, raw or wrapped. */
export function isConstraintViolation(err: unknown): boolean {
  return primaryCode(err) === SQLITE_CONSTRAINT;
}

/**
 * A BerthError for a SQLite error, `what` naming the database: damaged file → Corrupt; I/O error
 * or another process's lock → Unavailable; full disk → ResourceExhausted; a constraint (a CHECK,
 * a missing reference) → InvalidArgument; else Internal. A BerthError passes unchanged.
 */
export function sqliteError(err: unknown, what: string): BerthError {
  if (err instanceof BerthError) return err;
  const message = (err as Error | undefined)?.message ?? String(err);
  switch (primaryCode(err)) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return new BerthError('Corrupt', `${what}: ${message}`, { cause: err });
    case SQLITE_IOERR:
      return new BerthError('Unavailable', `${what}: I/O error: ${message}`, { cause: err });
    case SQLITE_FULL:
      return new BerthError('ResourceExhausted', `${what}: ${message}`, { cause: err });
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new BerthError('Unavailable', `${what}: ${message}`, { cause: err });
    case SQLITE_CONSTRAINT:
      return new BerthError('InvalidArgument', `${what}: ${message}`, { cause: err });
    default:
      return new BerthError('Internal', `${what}: ${message}`, { cause: err });
  }
}
