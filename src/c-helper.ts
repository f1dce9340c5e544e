/**
 * The C programs berth builds from its own sources at first use (berth-shim, berth-apply-layer):
 * compiled with the system C compiler into `<cacheDir>/<name>-<hash of source and flags>`, so a
 * changed source or flag set builds a new binary and an existing one is reused. The build writes a
 * temp name and renames it, so a crash or a concurrent build never leaves a half-written binary
 * under the final name.
 *
 * A binary that links a static library in is also rebuilt when that library changes (an apt
 * upgrade with a security fix): the build records each such library's path, size and mtime beside
 * the binary (`<binary>.deps`), and a binary whose record no longer matches is built again.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { failedPrecondition } from './errors.ts';

const run = promisify(execFile);

export interface CHelperBuild {
  /** The C file. */
  source: string;
  /** The binary's name before its hash, e.g. `berth-shim`. */
  name: string;
  /** What the errors call it, e.g. `berth-shim`, `the layer-apply helper`. */
  describe: string;
  /** The environment variable that names a built binary instead (named in the errors). */
  overrideVar: string;
  /**
   * How to link, tried in order until one builds (a preferred static link first, a plain one
   * after it): the compiler arguments after the source, and the static libraries (`libc.a`) they
   * link in, whose changes rebuild the binary. The first variant's arguments are part of the hash.
   */
  linkVariants: { args: string[]; staticLibs?: string[] }[];
  /** A compiler error's text to the Debian package that would fix it, if one is known. */
  missingPackage?: (compilerOutput: string) => string | undefined;
}

/** The path of the built binary: `$<overrideVar>` if set, else built into `cacheDir` if not there yet. */
export async function ensureCHelper(build: CHelperBuild, cacheDir: string, signal?: AbortSignal): Promise<string> {
  const override = process.env[build.overrideVar];
  if (override) return override;
  const source = await readFile(build.source);
  const hash = createHash('sha256').update(source).update(build.linkVariants[0]!.args.join(' ')).digest('hex').slice(0, 12);
  const target = path.join(cacheDir, `${build.name}-${hash}`);
  const depsFile = `${target}.deps`;
  if (await builtAndCurrent(target, depsFile)) return target;
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const cc = process.env.CC || 'cc';
  try {
    let lastError: unknown;
    let linked: string[] = [];
    for (const link of build.linkVariants) {
      try {
        await run(cc, ['-O2', '-o', tmp, build.source, ...link.args], { signal });
        linked = link.staticLibs ?? [];
        lastError = undefined;
        break;
      } catch (err: any) {
        if (err?.name === 'AbortError' || err?.code === 'ENOENT') throw err;
        lastError = err;
      }
    }
    if (lastError) throw lastError;
    // The binary first, then its record: a crash between the two leaves the new binary with no
    // record or with its predecessor's, which names library files that have changed since, so it
    // is built again. The other order could leave an old binary beside the new record.
    const libs = JSON.stringify(await describeLibs(cc, linked, signal));
    await rename(tmp, target);
    await writeFile(`${tmp}.deps`, libs);
    await rename(`${tmp}.deps`, depsFile);
    await removeOlderBuilds(cacheDir, build.name, path.basename(target));
  } catch (err: any) {
    await rm(tmp, { force: true });
    await rm(`${tmp}.deps`, { force: true });
    if (err?.name === 'AbortError') throw err;
    if (err?.code === 'ENOENT') {
      throw failedPrecondition(
        `cannot build ${build.describe}: no C compiler "${cc}" (install it with \`apt-get install gcc libc6-dev\`, or set ${build.overrideVar} to a built binary)`,
        { cause: err },
      );
    }
    const out = String(err.stderr || err.message).trim();
    const missing = build.missingPackage?.(out);
    const hint = missing ? ` (install it with \`apt-get install ${missing}\`)` : '';
    throw failedPrecondition(`cannot build ${build.describe} from ${build.source}${hint}: ${out}`, {
      cause: err,
      place: { file: build.source },
    });
  }
  return target;
}

interface LibIdentity {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Where the compiler found each static library, and which version of the file it was. */
async function describeLibs(cc: string, libs: string[], signal?: AbortSignal): Promise<LibIdentity[]> {
  const found: LibIdentity[] = [];
  for (const lib of libs) {
    const { stdout } = await run(cc, [`-print-file-name=${lib}`], { signal, encoding: 'utf8' });
    const file = stdout.trim();
    // The bare name back means the compiler did not find it: nothing to watch.
    if (!path.isAbsolute(file)) continue;
    const s = await stat(file);
    found.push({ path: file, size: s.size, mtimeMs: s.mtimeMs });
  }
  return found;
}

/** The binary is there, and every static library it linked in is still the file it linked. */
async function builtAndCurrent(target: string, depsFile: string): Promise<boolean> {
  try {
    await access(target, constants.X_OK);
    const libs = JSON.parse(await readFile(depsFile, 'utf8')) as LibIdentity[];
    for (const lib of libs) {
      const s = await stat(lib.path);
      if (s.size !== lib.size || s.mtimeMs !== lib.mtimeMs) return false;
    }
    return true;
  } catch {
    return false; // no binary, no record (a build from before records), or a library gone
  }
}

/** Binaries built from older sources (after an upgrade). Running ones keep their (deleted) file. */
async function removeOlderBuilds(cacheDir: string, name: string, keep: string): Promise<void> {
  for (const f of await readdir(cacheDir).catch(() => [] as string[])) {
    const current = f === keep || f === `${keep}.deps`;
    if (f.startsWith(`${name}-`) && !current && !f.includes('.tmp-')) await rm(path.join(cacheDir, f), { force: true });
  }
}
