/**
 * The OCI runtime binary (runc, or crun: same command line), driven through its CLI.
 * Each berth root keeps its own runtime state directory so two roots never see each other's tasks.
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BerthError, failedPrecondition, isKind, type ErrorKind } from '../errors.ts';

const run = promisify(execFile);

export const RUNTIME_COMMAND_TIMEOUT_MS = 60_000;

export type TaskRuntimeState = { status: 'created' | 'running' | 'stopped' | 'paused' | string; pid: number };

/** Find an executable on PATH (plus the sbin dirs, where Debian puts runc) or at an explicit path. */
export async function findExecutable(name: string): Promise<string | undefined> {
  const dirs = name.includes('/') ? [''] : [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = d ? path.join(d, name) : name;
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/**
 * The error kind of a runc or crun failure. They report errors only as text, with one exit status
 * for every failure, so this is the one place that reads that text; callers branch on the kind.
 * - AlreadyExists: a task with this id exists (runc "container with given ID already exists",
 *   crun "container `x` already exists");
 * - NotFound: no such task, or its process is gone ("does not exist", "not found", "no such
 *   file", "not running", "process already finished", "no such process");
 * - FailedPrecondition: anything else.
 */
export function runtimeErrorKind(text: string): ErrorKind {
  if (/already exists/i.test(text)) return 'AlreadyExists';
  if (/does not exist|not found|no such file|not running|process already finished|no such process/i.test(text)) return 'NotFound';
  return 'FailedPrecondition';
}

export class OciRuntime {
  /** Absolute path of the binary. */
  readonly binary: string;
  /** The runtime's `--root`: its state directory. */
  readonly stateRoot: string;

  constructor(binary: string, stateRoot: string) {
    this.binary = binary;
    this.stateRoot = stateRoot;
  }

  /** Resolve `name` (config `runtime.binary`); a missing runtime says how to install it. */
  static async resolve(name: string, stateRoot: string): Promise<OciRuntime> {
    const found = await findExecutable(name);
    if (!found) {
      const pkg = path.basename(name) === 'crun' ? 'crun' : 'runc';
      throw failedPrecondition(`container runtime "${name}" not found: install it with \`apt-get install ${pkg}\` (or set runtime.binary in the config)`);
    }
    return new OciRuntime(found, stateRoot);
  }

  /**
   * The argv that creates and starts task `id` from `bundle`, detached (the shim runs it). The
   * runtime's own warnings go to `logFile`, not into the container's output; a fatal error is also
   * printed on stderr, which the shim reports. A task with a terminal sends its master end to `consoleSocket`.
   */
  runArgv(id: string, bundle: string, pidFile: string, logFile: string, consoleSocket?: string): string[] {
    const console = consoleSocket ? ['--console-socket', consoleSocket] : [];
    return [this.binary, '--root', this.stateRoot, '--log', logFile, 'run', '--detach', ...console, '--pid-file', pidFile, '--bundle', bundle, id];
  }

  private async cmd(args: string[], signal?: AbortSignal): Promise<string> {
    try {
      // A runtime stuck on a hung mount must not wedge berth: give up after a while.
      const { stdout } = await run(this.binary, ['--root', this.stateRoot, ...args], {
        signal,
        maxBuffer: 16 << 20,
        timeout: RUNTIME_COMMAND_TIMEOUT_MS,
        killSignal: 'SIGKILL',
      });
      return stdout;
    } catch (err: any) {
      const msg = err.killed && !signal?.aborted ? `timed out after ${RUNTIME_COMMAND_TIMEOUT_MS / 1000}s` : String(err.stderr || err.message).trim();
      throw new BerthError(runtimeErrorKind(msg), `${path.basename(this.binary)} ${args.join(' ')}: ${msg}`, { cause: err });
    }
  }

  /** The task's state, or undefined if the runtime has no such task. */
  async state(id: string, signal?: AbortSignal): Promise<TaskRuntimeState | undefined> {
    try {
      const s = JSON.parse(await this.cmd(['state', id], signal));
      return { status: s.status, pid: s.pid };
    } catch (err) {
      if (isKind(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  /** Send a signal (`TERM`, `SIGKILL`, `9`) to the task's init. A task that is already gone is not an error. */
  async kill(id: string, sig: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.cmd(['kill', id, sig.replace(/^SIG/, '')], signal);
    } catch (err: any) {
      if (isKind(err, 'NotFound')) return; // the task, or its process, is already gone
      throw err;
    }
  }

  /** Forget the task (its cgroup and runtime state). Idempotent. */
  async delete(id: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.cmd(['delete', ...(opts.force ? ['--force'] : []), id], opts.signal);
    } catch (err) {
      if (isKind(err, 'NotFound')) return;
      throw err;
    }
  }
}
