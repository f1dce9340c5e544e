/**
 * Owner-only files and directories. berth's root holds container records with their env values,
 * registry tokens never, but image contents, logs and the metadata database do: nobody but root
 * should read them. A mode given at creation is not enough: a directory made earlier by another
 * step (the overlay probe, an older berth, a packaging script) keeps the mode it got then, so
 * these also tighten what exists.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { isMissing } from './durable-file.ts';

/** Group and other permission bits. */
const NOT_OWNER = 0o077;

/** Make `dir` (and missing parents) and leave it 0700, tightening an existing looser one. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (statSync(dir).mode & NOT_OWNER) chmodSync(dir, 0o700);
}

/**
 * Create `file` if missing and leave it 0600, with SQLite's `-wal` and `-shm` companions if they
 * exist (SQLite creates them with the database file's mode, so a 0600 database keeps new ones
 * private too).
 */
export function ensurePrivateDatabase(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if (statSync(f).mode & NOT_OWNER) chmodSync(f, 0o600);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }
}
