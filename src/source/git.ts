/**
 * The git source (`[source.git]`): fetch the configured ref into a bare mirror
 * (`<root>/sources/repo.git`, only that ref, no tags), verify the commit's signature with git's own
 * verification before anything from it is read, refuse a commit that does not descend from the
 * applied one (a rewind) unless `allow_rewind`, then check it out and make it current
 * (src/source/revisions.ts). A commit that fails any check is never applied: the last verified
 * revision stays current and the status says why.
 *
 * Offline first: the applied revision is whatever `current` names, known without the remote; a
 * remote that cannot be reached is a condition in the status, never an error that stops anything.
 */
import { access, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { GitSourceConfig } from '../config/config.ts';
import { acquireLock } from '../content/ref-lock.ts';
import { BerthError, failedPrecondition } from '../errors.ts';
import type { Logger } from '../log.ts';
import { gitComplaint, redactUrl, runGit } from './git-command.ts';
import { currentRevision, ensureSourcesDir, makeCurrent, materialize, prune, sourceManifestsPath } from './revisions.ts';
import { verifyCommit, type Refusal } from './verify.ts';

export type SourceState = 'Ready' | 'Reconciling' | 'Stalled';

/** Why the source is where it is: Applied, Unverified (applied without a signature check), or what stopped it. */
export type SourceReason = 'Applied' | 'Unverified' | 'NotFetchedYet' | 'Unreachable' | Refusal['reason'] | 'Rewound' | 'CheckoutFailed';

export interface SourceStatus {
  url: string;
  ref: string;
  state: SourceState;
  reason: SourceReason;
  /** One line, e.g. `commit 3f2a1b2 not signed by an allowed key`. */
  message: string;
  fetched?: string;
  applied?: string;
  /** Who signed the applied commit. */
  signer?: string;
  lastFetchAt?: Date;
  lastError?: string;
}

export interface GitSourceOptions {
  root: string;
  config: GitSourceConfig;
  log: Logger;
  /** Revisions kept on disk, the current one included (default 3). */
  keep?: number;
  /** How long a sync waits for another process's sync (default 10 min). */
  lockWaitMs?: number;
  /** How long a fetch may take before the remote counts as unreachable (default 10 min): a remote that accepts and then says nothing must not stop syncing forever. */
  fetchTimeoutMs?: number;
}

const FETCHED_REF = 'refs/berth/fetched';
/** Keeps the applied commit (and its history) in the mirror, so a rewind can be told from a fast-forward. */
const APPLIED_REF = 'refs/berth/applied';

export class GitSource {
  readonly sources: string;
  private readonly opts: GitSourceOptions;
  private readonly home: string;
  private current: SourceStatus;

  constructor(opts: GitSourceOptions) {
    this.opts = opts;
    this.sources = join(opts.root, 'sources');
    this.home = join(this.sources, 'home');
    const { url, ref } = opts.config;
    this.current = { url: redactUrl(url), ref, state: 'Reconciling', reason: 'NotFetchedYet', message: 'not fetched yet' };
  }

  manifestsPath(): string {
    return sourceManifestsPath(this.opts.root, this.opts.config.path);
  }

  /** The applied revision's manifests directory; undefined before the first verified revision. */
  async currentDir(): Promise<string | undefined> {
    return (await currentRevision(this.sources)) ? this.manifestsPath() : undefined;
  }

  status(): SourceStatus {
    return { ...this.current };
  }

  /** Read what is applied from disk, without the remote (offline first). */
  async load(): Promise<SourceStatus> {
    const applied = await currentRevision(this.sources).catch(() => undefined);
    if (applied)
      this.current = { ...this.current, applied: applied.commit, signer: applied.signer, message: `running ${short(applied.commit)}; not fetched yet` };
    return this.status();
  }

  /** Fetch, verify, check out, switch. Resolves with the new status; `changed` when another revision became current. */
  async sync(signal: AbortSignal): Promise<SourceStatus & { changed: boolean }> {
    await ensureSourcesDir(this.sources);
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    const lock = await acquireLock(join(this.sources, 'lock'), 'git source sync', { signal, timeoutMs: this.opts.lockWaitMs ?? 10 * 60_000 });
    try {
      const result = await this.syncLocked(signal);
      this.current = result.status;
      return { ...result.status, changed: result.changed };
    } finally {
      await lock.release();
    }
  }

  private async syncLocked(signal: AbortSignal): Promise<{ status: SourceStatus; changed: boolean }> {
    const { config, log } = this.opts;
    const applied = await currentRevision(this.sources);
    const base: SourceStatus = {
      url: redactUrl(config.url),
      ref: config.ref,
      state: 'Ready',
      reason: 'Applied',
      message: '',
      applied: applied?.commit,
      signer: applied?.signer,
      lastFetchAt: new Date(),
    };
    const git = await this.gitRunner(signal);
    const timeoutMs = this.opts.fetchTimeoutMs ?? 10 * 60_000;
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    // Only what the ref needs: the first fetch takes the commit alone (--depth 1); later ones take
    // the commits since, down to what the mirror has, so whether a commit descends from the applied
    // one can still be told (a shallow boundary stops the walk only below the applied commit).
    const depth = applied ? [] : ['--depth', '1'];
    const fetchArgs = [
      'fetch',
      '--quiet',
      '--no-tags',
      '--no-write-fetch-head',
      '--no-recurse-submodules',
      ...depth,
      '--',
      config.url,
      `+${config.ref}:${FETCHED_REF}`,
    ];
    const fetch = await git(fetchArgs, undefined, bounded).catch((err: unknown) => {
      if (signal.aborted || !bounded.aborted) throw err;
      return { code: 124, stdout: Buffer.alloc(0), stderr: `fatal: no answer within ${Math.round(timeoutMs / 1000)} s` };
    });
    if (fetch.code !== 0) {
      signal.throwIfAborted();
      const error = `fetch of ${config.ref} from ${base.url} failed: ${gitComplaint(fetch)}`;
      // Said once when the remote goes away, not at every interval while it stays away.
      (this.current.reason === 'Unreachable' ? log.debug : log.warn).call(
        log,
        { url: base.url, ref: config.ref, error },
        'git source unreachable; keeping the applied revision',
      );
      const keeping = applied ? `running ${short(applied.commit)}` : 'nothing applied yet';
      return {
        status: {
          ...base,
          state: applied ? 'Reconciling' : 'Stalled',
          reason: 'Unreachable',
          message: `remote unreachable; ${keeping}`,
          fetched: this.current.fetched,
          lastError: error,
        },
        changed: false,
      };
    }
    const fetched = (await git(['rev-parse', '--verify', '--quiet', `${FETCHED_REF}^{commit}`])).stdout.toString().trim();
    if (!fetched) throw failedPrecondition(`git source: ${config.ref} fetched from ${base.url} is not a commit`);
    const withFetched = { ...base, fetched };
    if (applied?.commit === fetched) return { status: this.settled(withFetched), changed: false };

    // Verify before anything of the commit is read.
    const verdict = config.verify ? await verifyCommit(git, config.verify, fetched) : { ok: true as const, signer: undefined };
    if (!verdict.ok) return { status: refused(withFetched, verdict.reason, verdict.message), changed: false };
    if (applied && !config.allowRewind) {
      const ancestor = await git(['merge-base', '--is-ancestor', applied.commit, fetched]);
      if (ancestor.code !== 0) {
        signal.throwIfAborted();
        return {
          status: refused(
            withFetched,
            'Rewound',
            `commit ${short(fetched)} does not descend from the applied ${short(applied.commit)} (a rewind; allow_rewind = true accepts it)`,
          ),
          changed: false,
        };
      }
    }
    const marker = { commit: fetched, signer: verdict.signer, verifiedAt: new Date().toISOString() };
    try {
      await materialize(this.sources, marker, (into) => this.archive(git, fetched, into), signal, config.path);
      await makeCurrent(this.sources, fetched);
    } catch (err) {
      signal.throwIfAborted();
      const error = `checkout of ${short(fetched)} failed: ${(err as Error).message}`;
      return { status: { ...withFetched, state: 'Stalled', reason: 'CheckoutFailed', message: error, lastError: error }, changed: false };
    }
    await git(['update-ref', APPLIED_REF, fetched]);
    const removed = await prune(this.sources, this.opts.keep ?? 3);
    log.info({ url: base.url, ref: config.ref, commit: fetched, signer: verdict.signer, removed }, 'git source: new revision applied');
    return { status: this.settled({ ...withFetched, applied: fetched, signer: verdict.signer }), changed: true };
  }

  private settled(s: SourceStatus): SourceStatus {
    const verified = this.opts.config.verify !== undefined;
    const by = s.signer ? ` signed by ${s.signer}` : '';
    return verified
      ? { ...s, state: 'Ready', reason: 'Applied', message: `applied ${short(s.applied!)}${by}` }
      : { ...s, state: 'Ready', reason: 'Unverified', message: `applied ${short(s.applied!)} WITHOUT signature verification ([source.git.verify] is not set)` };
  }

  private async archive(git: GitRunner, commit: string, into: Writable): Promise<void> {
    const r = await git(['archive', '--format=tar', commit], into);
    if (r.code !== 0) throw new BerthError('Internal', `git archive ${short(commit)}: ${gitComplaint(r)}`);
  }

  /** A runner bound to the mirror (made on first use: init in a temp dir, then renamed) and the credentials. */
  private async gitRunner(signal: AbortSignal): Promise<GitRunner> {
    const gitDir = join(this.sources, 'repo.git');
    const env = await this.credentialsEnv();
    const run: GitRunner = (args, into, bounded) => runGit({ gitDir, home: this.home, env, signal: bounded ?? signal }, args, { stdout: into });
    if (await exists(join(gitDir, 'HEAD'))) await removeStaleGitLocks(gitDir);
    else {
      const tmp = await mkdtemp(join(this.sources, '.tmp-repo-'));
      const init = await runGit({ gitDir: tmp, home: this.home, signal }, ['init', '--quiet', '--bare']);
      if (init.code !== 0) throw new BerthError('Internal', `git init ${tmp}: ${gitComplaint(init)}`);
      await rename(tmp, gitDir);
    }
    return run;
  }

  /** ssh key and known_hosts, or an HTTPS token, for git's environment only (never in argv, never logged). */
  private async credentialsEnv(): Promise<Record<string, string>> {
    const c = this.opts.config;
    const env: Record<string, string> = {};
    if (c.sshKey || c.knownHosts) {
      const ssh = ['ssh', '-F', '/dev/null', '-o', 'BatchMode=yes'];
      if (c.sshKey) ssh.push('-o', 'IdentitiesOnly=yes', '-i', quote(c.sshKey));
      if (c.knownHosts) ssh.push('-o', `UserKnownHostsFile=${quote(c.knownHosts)}`, '-o', 'StrictHostKeyChecking=yes');
      env.GIT_SSH_COMMAND = ssh.join(' ');
    }
    if (c.verify?.mode === 'gpg') env.GNUPGHOME = c.verify.keyring; // the configured keyring alone is trusted
    if (c.tokenFile) {
      const token = (await readFile(c.tokenFile, 'utf8')).trim();
      // Sent only to URLs under the configured one (git's http.<url>.* scoping).
      env.GIT_CONFIG_COUNT = '1';
      env.GIT_CONFIG_KEY_0 = `http.${c.url}.extraHeader`;
      env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
    }
    return env;
  }
}

/**
 * A git killed mid-fetch leaves its lock files (`refs/…/x.lock`, `packed-refs.lock`) and temporary
 * packs, and would refuse every later fetch. Only a sync touches the mirror, and it holds the
 * sources lock: whatever lock git left there is from a process that is gone.
 */
async function removeStaleGitLocks(gitDir: string): Promise<void> {
  const stale = (dir: string, name: string) => name.endsWith('.lock') || (dir.endsWith('/objects/pack') && name.startsWith('tmp_'));
  for (const [dir, recursive] of [
    [gitDir, false],
    [join(gitDir, 'refs'), true],
    [join(gitDir, 'objects', 'pack'), false],
  ] as const) {
    const entries = await readdir(dir, { recursive, withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isFile() && stale(e.parentPath, e.name)) await rm(join(e.parentPath, e.name), { force: true });
  }
}

/** git on the mirror; `bounded` replaces the sync's signal for one command (a fetch with a time limit). */
export type GitRunner = (args: string[], into?: Writable, bounded?: AbortSignal) => ReturnType<typeof runGit>;

function refused(s: SourceStatus, reason: SourceReason, message: string): SourceStatus {
  return { ...s, state: 'Stalled', reason, message: `${message}; ${s.applied ? `running ${short(s.applied)}` : 'nothing applied yet'}`, lastError: message };
}

export function short(commit: string): string {
  return commit.slice(0, 12);
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
