/**
 * The C programs berth builds from its own sources at first use (berth-shim, berth-apply-layer):
 * compiled with the system C compiler into `<cacheDir>/<name>-<hash of source and flags>`, so a
 * changed source or flag set builds a new binary and an existing one is reused. The build writes a
 * temp name and renames it, so a crash or a concurrent build never leaves a half-written binary
 * under the final name.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
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
   * Compiler arguments after the source, tried in order until one builds (a preferred static link
   * first, a plain one after it). The first one is part of the hash.
   */
  linkVariants: string[][];
  /** A compiler error's text to the Debian package that would fix it, if one is known. */
  missingPackage?: (compilerOutput: string) => string | undefined;
}

/** The path of the built binary: `$<overrideVar>` if set, else built into `cacheDir` if not there yet. */
export async function ensureCHelper(build: CHelperBuild, cacheDir: string, signal?: AbortSignal): Promise<string> {
  const override = process.env[build.overrideVar];
  if (override) return override;
  const source = await readFile(build.source);
  const hash = createHash('sha256').update(source).update(build.linkVariants[0]!.join(' ')).digest('hex').slice(0, 12);
  const target = path.join(cacheDir, `${build.name}-${hash}`);
  try {
    await access(target, constants.X_OK);
    return target;
  } catch {}
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const cc = process.env.CC || 'cc';
  try {
    let lastError: unknown;
    for (const link of build.linkVariants) {
      try {
        await run(cc, ['-O2', '-o', tmp, build.source, ...link], { signal });
        lastError = undefined;
        break;
      } catch (err: any) {
        if (err?.name === 'AbortError' || err?.code === 'ENOENT') throw err;
        lastError = err;
      }
    }
    if (lastError) throw lastError;
    await rename(tmp, target);
    await removeOlderBuilds(cacheDir, build.name, path.basename(target));
  } catch (err: any) {
    await rm(tmp, { force: true });
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

/** Binaries built from older sources (after an upgrade). Running ones keep their (deleted) file. */
async function removeOlderBuilds(cacheDir: string, name: string, keep: string): Promise<void> {
  for (const f of await readdir(cacheDir).catch(() => [] as string[])) {
    if (f.startsWith(`${name}-`) && f !== keep && !f.includes('.tmp-')) await rm(path.join(cacheDir, f), { force: true });
  }
}
