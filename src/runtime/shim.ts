/**
 * berth-shim (shim/berth-shim.c), the per-container supervisor: built once from source with the
 * system C compiler into a content-addressed path (a changed source builds a new binary, an
 * existing binary is reused), then started once per task. See the C file for the protocol.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CHelperBuild, ensureCHelper } from '../c-helper.ts';
import { BerthError } from '../errors.ts';
import { runtimeErrorKind } from './oci-runtime.ts';

const run = promisify(execFile);
export const SHIM_SOURCE = fileURLToPath(new URL('./shim/berth-shim.c', import.meta.url));

const SHIM: CHelperBuild = {
  source: SHIM_SOURCE,
  name: 'berth-shim',
  describe: 'berth-shim',
  overrideVar: 'BERTH_SHIM',
  // Static: no dynamic loader or shared libc pages to map, the smallest resident footprint. A libc
  // upgrade rebuilds it.
  linkVariants: [{ args: ['-static'], staticLibs: ['libc.a'] }, { args: [] }],
};

/**
 * The path of a built shim: `$BERTH_SHIM` if set, else `<cacheDir>/berth-shim-<hash>`, compiled
 * there if it is not there yet.
 */
export function ensureShim(cacheDir: string, signal?: AbortSignal): Promise<string> {
  return ensureCHelper(SHIM, cacheDir, signal);
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
