/**
 * berth-shim (shim/berth-shim.c), the per-container supervisor: built once from source with the
 * system C compiler into a content-addressed path (a changed source builds a new binary, an
 * existing binary is reused), then started once per task. See the C file for the protocol.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BerthError, failedPrecondition } from '../errors.ts';
import { runtimeErrorKind } from './oci-runtime.ts';

const run = promisify(execFile);
export const SHIM_SOURCE = fileURLToPath(new URL('./shim/berth-shim.c', import.meta.url));

/**
 * The path of a built shim: `$BERTH_SHIM` if set, else `<cacheDir>/berth-shim-<source hash>`,
 * compiling it there (atomically: temp name, then rename) if it is not there yet.
 */
export async function ensureShim(cacheDir: string, signal?: AbortSignal): Promise<string> {
  const override = process.env.BERTH_SHIM;
  if (override) return override;
  const source = await readFile(SHIM_SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const target = path.join(cacheDir, `berth-shim-${hash}`);
  try {
    await access(target, constants.X_OK);
    return target;
  } catch {}
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const cc = process.env.CC || 'cc';
  try {
    // Static: no dynamic loader or shared libc pages to map, the smallest resident footprint.
    try {
      await run(cc, ['-O2', '-static', '-o', tmp, SHIM_SOURCE], { signal });
    } catch {
      await run(cc, ['-O2', '-o', tmp, SHIM_SOURCE], { signal });
    }
    await rename(tmp, target);
    await removeOldShims(cacheDir, path.basename(target));
  } catch (err: any) {
    await rm(tmp, { force: true });
    if (err?.code === 'ENOENT') {
      throw failedPrecondition(
        `cannot build berth-shim: no C compiler "${cc}" (install it with \`apt-get install gcc libc6-dev\`, or set BERTH_SHIM to a built shim)`,
        { cause: err },
      );
    }
    throw failedPrecondition(`cannot build berth-shim from ${SHIM_SOURCE}: ${String(err.stderr || err.message).trim()}`, {
      cause: err,
      place: { file: SHIM_SOURCE },
    });
  }
  return target;
}

/** Shims built from older sources (after an upgrade). Running ones keep their (deleted) binary. */
async function removeOldShims(cacheDir: string, keep: string): Promise<void> {
  for (const f of await readdir(cacheDir).catch(() => [] as string[])) {
    if (f.startsWith('berth-shim-') && f !== keep && !f.includes('.tmp-')) await rm(path.join(cacheDir, f), { force: true });
  }
}

export const START_TIMEOUT_MS = 120_000;

export interface ShimArgs {
  taskId: string;
  exitFile: string;
  logFile: string;
  logMaxBytes: number;
  logMaxFiles: number;
  pidFile: string;
  oomFile?: string;
  /** A container with a terminal: where the runtime sends the terminal's master end (the shim logs its output). */
  consoleSocket?: string;
  /** The runtime command line, `[binary, ...args]`, e.g. `runc --root R run -d --pid-file P --bundle B id`. */
  runtimeArgv: string[];
}

/** Start a task under a new, detached shim. Resolves once the task runs; rejects with the runtime's error otherwise. */
export async function startShim(shim: string, a: ShimArgs, signal?: AbortSignal): Promise<{ shimPid: number; pid: number }> {
  const args = [
    '--task-id',
    a.taskId,
    '--exit-file',
    a.exitFile,
    '--log',
    a.logFile,
    '--log-max-bytes',
    String(a.logMaxBytes),
    '--log-max-files',
    String(a.logMaxFiles),
    '--pid-file',
    a.pidFile,
    ...(a.oomFile ? ['--oom-file', a.oomFile] : []),
    ...(a.consoleSocket ? ['--console-socket', a.consoleSocket] : []),
    '--',
    ...a.runtimeArgv,
  ];
  let stdout: string;
  try {
    // Only the foreground half is killed on timeout; the runtime's own failure then shows in runtime.log.
    ({ stdout } = await run(shim, args, { signal, timeout: START_TIMEOUT_MS, killSignal: 'SIGKILL' }));
  } catch (err: any) {
    if (err.killed && !signal?.aborted)
      throw new BerthError('Unavailable', `the task did not start within ${START_TIMEOUT_MS / 1000}s (runtime stuck?)`, { cause: err });
    const line = String(err.stdout || err.stderr || err.message).trim();
    throw new BerthError(runtimeErrorKind(line), line.replace(/^error /, ''), { cause: err });
  }
  const m = /^ok (\d+) (\d+)/.exec(stdout);
  if (!m) throw new BerthError('Internal', `berth-shim: unexpected reply "${stdout.trim()}"`);
  return { shimPid: Number(m[1]), pid: Number(m[2]) };
}
