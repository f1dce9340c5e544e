/**
 * Running Debian's `git` on what a remote sent: hooks and fsmonitor off, no system or global
 * config, an empty HOME, a minimal environment (nothing of berth's own environment leaks in, no
 * prompt can hang a fetch), no automatic gc (a kill mid-gc must not touch kept revisions), and
 * objects and refs fsynced (a power cut leaves the mirror usable).
 */
import { spawn } from 'node:child_process';
import { unavailable } from '../errors.ts';

export interface GitRun {
  /** `--git-dir`: the bare mirror. */
  gitDir: string;
  /** An empty directory used as HOME (so no ~/.gitconfig, ~/.ssh/config is read). */
  home: string;
  /** Extra environment (credentials, GNUPGHOME); never logged. */
  env?: Record<string, string>;
  signal?: AbortSignal;
}

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

const SAFE_CONFIG = [
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'core.fsync=committed',
  '-c',
  'gc.auto=0',
  '-c',
  'maintenance.auto=false',
  '-c',
  'fetch.writeCommitGraph=false',
  '-c',
  'protocol.ext.allow=never',
];

/** The environment git runs with: nothing inherited but a PATH. */
export function gitEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    SSH_ASKPASS: '/bin/false',
    GIT_OPTIONAL_LOCKS: '0',
    ...extra,
  };
}

/** Run `git --git-dir=… <args>`; resolves with the exit code (a non-zero code is not thrown: callers decide). */
export function runGit(opts: GitRun, args: string[], io: { stdout?: NodeJS.WritableStream } = {}): Promise<GitResult> {
  opts.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...SAFE_CONFIG, `--git-dir=${opts.gitDir}`, ...args], {
      env: gitEnv(opts.home, opts.env),
      cwd: opts.home,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    let err = '';
    if (io.stdout) child.stdout.pipe(io.stdout);
    else child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 64 * 1024) err += String(b);
    });
    child.on('error', (e) => reject(opts.signal?.aborted ? opts.signal.reason : unavailable(`git: cannot run: ${e.message}`, { cause: e })));
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout: Buffer.concat(out), stderr: err.trim() }));
  });
}

/** The last line of git's complaint, which names the problem (`fatal: …`), with credentials removed. */
export function gitComplaint(r: GitResult): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const from = lines.findLastIndex((l) => /^(fatal|error):/.test(l));
  const said = (from >= 0 ? lines.slice(from) : lines.slice(-1)).join(' ').trim();
  return redactUrl(said || `git exited with ${r.code}`);
}

/** A URL without user:password, for messages and status. */
export function redactUrl(text: string): string {
  return text.replace(/(\w+:\/\/)[^/@\s]+@/g, '$1');
}
