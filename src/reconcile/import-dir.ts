/**
 * The import directory (config `reconcile.import_dir`, default `<root>/import`): OCI archives, OCI
 * layout directories and docker-archives dropped there are imported at start-up, every digest
 * verified, as k3s does with its air-gap images. An archive already imported (same size and
 * mtime) is not read again; one that fails is reported and the others still go in.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ifExists, writeFileAtomic } from '../durable-file.ts';
import { importImages } from '../images/import.ts';
import { pathExists } from '../path-exists.ts';
import { RECONCILE_LOCK, withLock } from '../metadata/lock.ts';
import type { ReconcileDeps } from './deps.ts';

interface Seen {
  size: number;
  mtimeMs: number;
  images: string[];
}

const IMPORTABLE = /\.(tar|tar\.gz|tgz|oci)$/;

export interface ImportDirectoryOptions {
  /** Who imports, for the reconcile lock's holder. Default `berth (pid N)`. */
  holder?: string;
  /** How long to wait for another holder of the reconcile lock. Default one minute. */
  waitMs?: number;
}

/**
 * Import what is new in `dir`, holding the reconcile lock: an import replaces image records,
 * which a turn running meanwhile in another process would plan against.
 */
export async function importDirectory(
  deps: ReconcileDeps,
  dir: string,
  signal: AbortSignal,
  opts: ImportDirectoryOptions = {},
): Promise<{ imported: string[]; failed: string[] }> {
  const lock = { holder: opts.holder ?? `berth (pid ${process.pid})`, waitMs: opts.waitMs ?? 60_000, signal };
  return withLock(deps.metadata, RECONCILE_LOCK, lock, (s) => importNew(deps, dir, s));
}

async function importNew(deps: ReconcileDeps, dir: string, signal: AbortSignal): Promise<{ imported: string[]; failed: string[] }> {
  const statePath = path.join(deps.config.root, 'import-state.json');
  let seen: Record<string, Seen> = {};
  try {
    seen = JSON.parse(await readFile(statePath, 'utf8'));
  } catch {
    // first start, or a state file lost in a crash: importing again is safe (content is deduplicated)
  }
  const names = await ifExists(readdir(dir));
  if (!names) return { imported: [], failed: [] };
  const entries = names.filter((n) => !n.startsWith('.')).sort();
  const imported: string[] = [];
  const failed: string[] = [];
  for (const name of entries) {
    const file = path.join(dir, name);
    let st;
    try {
      st = await stat(file);
    } catch (err: any) {
      // A dangling symlink (or an entry removed meanwhile, or unreadable) must not stop start-up:
      // `berth run` failing here would only be restarted by systemd into the same failure.
      failed.push(file);
      deps.log.warn({ file, error: err.message }, 'skipping an unreadable entry of the import directory');
      deps.metadata.addEvent({
        object: { kind: 'Import', name: file },
        type: 'Warning',
        reason: 'ImportSkipped',
        message: `cannot read ${file}: ${err.message}`,
      });
      continue;
    }
    const isLayout = st.isDirectory() && (await pathExists(path.join(file, 'oci-layout')));
    if (!isLayout && !(st.isFile() && IMPORTABLE.test(name))) continue;
    const prev = seen[name];
    const images = prev?.images ?? [];
    if (prev && prev.size === st.size && prev.mtimeMs === st.mtimeMs && images.every((i) => deps.metadata.getImage(i))) continue;
    try {
      const result = await importImages({ path: file, store: deps.content, metadata: deps.metadata, signal });
      const names = result.records.map((r) => r.name);
      seen[name] = { size: st.size, mtimeMs: st.mtimeMs, images: names };
      imported.push(...names);
      deps.log.info({ file, images: names }, 'imported images from the import directory');
      for (const n of names)
        deps.metadata.addEvent({ object: { kind: 'Image', name: n }, type: 'Normal', reason: 'Imported', message: `imported from ${file}` });
    } catch (err) {
      signal.throwIfAborted();
      failed.push(file);
      deps.log.error({ file, err }, 'cannot import from the import directory');
      deps.metadata.addEvent({ object: { kind: 'Import', name: file }, type: 'Warning', reason: 'ImportFailed', message: (err as Error).message });
    }
  }
  await writeFileAtomic(statePath, JSON.stringify(seen, null, 2));
  return { imported, failed };
}
