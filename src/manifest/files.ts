/**
 * Which files hold manifests: `.yaml`/`.yml` files in a directory tree (or one named file), in a
 * stable order. Hidden files and directories (`.git`, `.#web.yaml`), editor swap and backup files
 * (`.web.yaml.swp`, `web.yaml~`, `#web.yaml#`, `web.yaml.bak`, `.orig`, `.tmp`) and anything that is
 * not YAML are ignored, so an editor or a half-finished `git checkout` never feeds the loader junk.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { notFound } from '../errors.ts';

const YAML_FILE = /\.ya?ml$/i;

/** True for a file name berth reads as a manifest. */
export function isManifestFileName(name: string): boolean {
  if (name.startsWith('.') || name.startsWith('#') || name.endsWith('~')) return false;
  return YAML_FILE.test(name);
}

/**
 * Lists the manifest files under `path` (a directory, walked recursively, or a single file, which
 * is read whatever its name: the user named it). Paths are joined onto `path` as given, so error
 * messages read the way the user typed them (`manifests/web.yaml:3:5`).
 */
export async function listManifestFiles(path: string, signal?: AbortSignal): Promise<string[]> {
  signal?.throwIfAborted();
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw notFound(`manifests: ${path} does not exist`, { cause: err, place: { file: path } });
    throw err;
  });
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  await walk(path, out, signal);
  return out.sort();
}

async function walk(dir: string, out: string[], signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, out, signal);
    else if (e.isFile() && isManifestFileName(e.name)) out.push(p);
    else if (e.isSymbolicLink() && isManifestFileName(e.name)) {
      // A link is read for what it points to; a dangling one is left for the reader to report.
      const target = await stat(p).catch(() => undefined);
      if (!target || target.isFile()) out.push(p);
    }
  }
}
