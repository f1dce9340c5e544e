/**
 * Run a process inside a running task with `runc exec` (or crun: same command line): it joins the
 * task's namespaces and cgroup and gets the task's user, environment, capabilities, seccomp and
 * AppArmor settings (the runtime reads them from the bundle's config.json). Used by health probes
 * and `berth exec`.
 *
 * runc stays the parent of the process it starts and exits with its exit code (128+signal when it
 * was killed). Killing runc would not kill that process, so the runtime writes the process's pid
 * (a host pid) to a pid file, and a timeout or an abort kills that process and everything it
 * started (process-tree.ts) before runc, which then exits by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, invalidArgument } from '../errors.ts';
import { killProcessTree } from './process-tree.ts';

export const EXEC_OUTPUT_LIMIT_BYTES = 4096;

/** How long runc gets to write the pid file, or to exit after its process was killed, before it is killed too. */
const RUNTIME_GRACE_MS = 2000;

export interface ExecOptions {
  /** The command and its arguments, as the container sees them (PATH from the container's env). */
  args: string[];
  /** Added to (or replacing) the container's environment. */
  env?: Record<string, string>;
  /** Working directory inside the container (default: the container's). */
  cwd?: string;
  /** Kill the process (and what it started) after this long; the result says `timedOut`. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * `capture` (default): no stdin, stdout and stderr kept together (the last `outputLimitBytes`).
   * `inherit`: the process gets this process's stdin, stdout and stderr (for `berth exec`).
   */
  stdio?: 'capture' | 'inherit';
  /**
   * With `stdio: 'inherit'`: give the process a terminal (`berth exec -t`). runc in the foreground
   * makes the pty and relays it to its own stdio (raw mode and window size included).
   */
  tty?: boolean;
  outputLimitBytes?: number;
}

export interface ExecResult {
  /** The exit code (128+signal if killed by a signal; 255 if the runtime could not start it); null when killed at the timeout. */
  exitCode: number | null;
  timedOut: boolean;
  /** stdout and stderr as they arrived, the last `outputLimitBytes` of it (empty with `stdio: 'inherit'`). */
  output: string;
  /** Earlier output was dropped to keep within the limit. */
  outputTruncated: boolean;
  durationMs: number;
}

/** Which task: its runtime id (the container name), the runtime binary and the runtime's state dir. */
export interface ExecTarget {
  id: string;
  runtime: string;
  runtimeRoot: string;
}

/** Keeps the last `limit` bytes written to it. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  private readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const over = this.size - this.limit;
      const first = this.chunks[0]!;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
      }
      this.truncated = true;
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/**
 * Pid files live on a tmpfs (/run) when there is one: a probe every few seconds must not write to
 * the device's SD card.
 */
function pidFileDir(): string {
  return existsSync('/run') ? '/run/berth-exec' : path.join(os.tmpdir(), 'berth-exec');
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Kill what the runtime started (found through the pid file), then the runtime if it does not exit
 * by itself. A runtime that has not written the pid file yet is given a moment to do so: killing it
 * first could leave the process it is starting behind.
 */
async function killExec(child: ChildProcess, pidFile: string): Promise<void> {
  const runtimeGone = exited(child);
  const deadline = Date.now() + RUNTIME_GRACE_MS;
  for (;;) {
    // Once runc has exited it has reaped its process, whose pid may be anyone's now: never kill it then.
    if (child.exitCode !== null || child.signalCode !== null) return;
    const pid = await readPid(pidFile);
    if (pid) {
      await killProcessTree(pid);
      break;
    }
    if (Date.now() >= deadline) break;
    await sleep(10);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), RUNTIME_GRACE_MS);
  await runtimeGone;
  clearTimeout(timer);
}

/** Run `opts.args` in the task. Throws only if the runtime cannot be run at all, or on abort (after cleaning up). */
export async function execInTask(target: ExecTarget, opts: ExecOptions): Promise<ExecResult> {
  opts.signal?.throwIfAborted();
  if (opts.args.length === 0) throw new BerthError('InvalidArgument', 'exec: no command given');
  const dir = pidFileDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pidFile = path.join(dir, `${target.id}-${randomBytes(6).toString('hex')}.pid`);
  const inherit = opts.stdio === 'inherit';
  if (opts.tty && !inherit) throw invalidArgument('exec: a terminal (tty) needs stdio: inherit');
  const argv = ['--root', target.runtimeRoot, 'exec', '--pid-file', pidFile];
  if (opts.cwd) argv.push('--cwd', opts.cwd);
  const env = opts.tty ? { TERM: process.env.TERM || 'xterm', ...opts.env } : (opts.env ?? {});
  for (const [k, v] of Object.entries(env)) argv.push('--env', `${k}=${v}`);
  if (opts.tty) argv.push('--tty');
  argv.push(target.id, ...opts.args);

  const tail = new OutputTail(opts.outputLimitBytes ?? EXEC_OUTPUT_LIMIT_BYTES);
  const started = Date.now();
  const child = spawn(target.runtime, argv, { stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => tail.push(b));
  child.stderr?.on('data', (b: Buffer) => tail.push(b));

  let timedOut = false;
  let aborted = false;
  let timer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= killExec(child, pidFile));
  const onAbort = () => {
    aborted = true;
    void stop();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.timeoutMs !== undefined) {
    timer = setTimeout(() => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      timedOut = true;
      void stop();
    }, opts.timeoutMs);
  }
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (err) =>
        reject(new BerthError('FailedPrecondition', `exec in ${target.id}: cannot run ${target.runtime}: ${err.message}`, { cause: err })),
      );
      child.once('exit', (c, s) => resolve(c ?? (s ? 128 + (os.constants.signals[s] ?? 0) : null)));
    });
    await stopping;
    // A process that started a daemon holding stdout open must not hold us: take what is there.
    await Promise.race([
      Promise.all([child.stdout, child.stderr].map((s) => (s && !s.closed ? new Promise((r) => s.once('close', r)) : undefined))),
      sleep(100),
    ]);
    child.stdout?.destroy();
    child.stderr?.destroy();
    if (aborted) throw opts.signal!.reason ?? new BerthError('Aborted', `exec in ${target.id}: aborted`);
    return { exitCode: timedOut ? null : code, timedOut, output: tail.text(), outputTruncated: tail.truncated, durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    await rm(pidFile, { force: true });
  }
}
