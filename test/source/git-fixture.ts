/**
 * A real git remote for the source tests: a work repository where commits are made (signed with
 * an allowed ssh key, another key, or not at all), pushed to a bare repository that is served by
 * `git daemon` on a free loopback port (and readable as file://), plus the allowed-signers file.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/registry.ts';

const run = promisify(execFile);
export const ALLOWED_PRINCIPAL = 'release@fleet.example';

/** An ssh key of the fixture's, no signature, or a GPG key (its GNUPGHOME and fingerprint). */
export type Signer = 'allowed' | 'other' | false | { gnupgHome: string; key: string };

export class GitFixture {
  readonly dir: string;
  readonly work: string;
  readonly bare: string;
  readonly allowedSigners: string;
  private daemon: ChildProcess | undefined;
  port = 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.work = join(dir, 'work');
    this.bare = join(dir, 'served', 'fleet.git');
    this.allowedSigners = join(dir, 'allowed_signers');
  }

  static async create(): Promise<GitFixture> {
    const f = new GitFixture(await mkdtemp(join(tmpdir(), 'berth-git-')));
    for (const k of ['allowed', 'other']) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(f.dir, k)]);
    await writeFile(f.allowedSigners, `${ALLOWED_PRINCIPAL} ${(await readFile(join(f.dir, 'allowed.pub'), 'utf8')).trim()}\n`);
    await mkdir(dirname(f.bare), { recursive: true });
    await run('git', ['init', '-q', '--bare', '-b', 'main', f.bare]);
    await run('git', ['init', '-q', '-b', 'main', f.work]);
    return f;
  }

  get fileUrl(): string {
    return `file://${this.bare}`;
  }

  get daemonUrl(): string {
    return `git://127.0.0.1:${this.port}/fleet.git`;
  }

  private git(...args: string[]) {
    return this.gitWith({}, ...args);
  }

  private gitWith(env: Record<string, string>, ...args: string[]) {
    return run('git', ['-C', this.work, '-c', 'user.name=Fleet', '-c', 'user.email=fleet@example', ...args], {
      env: { PATH: process.env.PATH!, HOME: this.dir, GIT_CONFIG_NOSYSTEM: '1', ...env },
    });
  }

  /** Write `files` (path → content; null removes), commit with `signer`, push to main (forced). Returns the commit. */
  async commit(files: Record<string, string | null>, signer: Signer = 'allowed', message = 'change'): Promise<string> {
    for (const [p, content] of Object.entries(files)) {
      const abs = join(this.work, p);
      if (content === null) await rm(abs, { force: true });
      else {
        await mkdir(dirname(abs), { recursive: true });
        await writeFile(abs, content);
      }
    }
    await this.git('add', '-A');
    if (typeof signer === 'object')
      await this.gitWith(
        { GNUPGHOME: signer.gnupgHome },
        '-c',
        'gpg.format=openpgp',
        '-c',
        `user.signingkey=${signer.key}`,
        'commit',
        '-S',
        '-q',
        '--allow-empty',
        '-m',
        message,
      );
    else {
      const sign = signer ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${join(this.dir, signer)}`, 'commit', '-S'] : ['commit', '--no-gpg-sign'];
      await this.git(...sign, '-q', '--allow-empty', '-m', message);
    }
    const commit = (await this.git('rev-parse', 'HEAD')).stdout.trim();
    await this.push(commit);
    return commit;
  }

  /** Point the served main at `commit` (a force-push, e.g. back to an older commit). */
  async push(commit: string): Promise<void> {
    await this.git('push', '-q', '--force', this.bare, `${commit}:refs/heads/main`);
  }

  /** Move the work repository back to `commit` (so later commits build on it). */
  async resetTo(commit: string): Promise<void> {
    await this.git('reset', '-q', '--hard', commit);
  }

  /**
   * Serve the bare repository with `git daemon` on a free loopback port. Ready means `git
   * ls-remote` answers through it: test files run in parallel, and another file's server can take
   * the port between freePort() and git daemon's bind (the daemon then exits, and a mere connect
   * would reach the other server). Then it tries another port.
   */
  async serve(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort();
      const d = spawn(
        'git',
        [
          'daemon',
          '--reuseaddr',
          '--export-all',
          '--informative-errors',
          `--base-path=${dirname(this.bare)}`,
          '--listen=127.0.0.1',
          `--port=${this.port}`,
          dirname(this.bare),
        ],
        { stdio: 'ignore', detached: true },
      );
      this.daemon = d;
      for (let i = 0; i < 100 && d.exitCode === null; i++) {
        const answered = await run('git', ['ls-remote', this.daemonUrl], { timeout: 2000 }).then(
          () => true,
          () => false,
        );
        if (answered && d.exitCode === null) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      await this.stopServing();
    }
    throw new Error('git daemon did not start');
  }

  async stopServing(): Promise<void> {
    const d = this.daemon;
    this.daemon = undefined;
    if (!d || d.exitCode !== null) return;
    const exited = new Promise((r) => d.once('exit', r));
    process.kill(-d.pid!, 'SIGKILL'); // git runs git-daemon as its child: stop the whole group
    await exited;
  }

  async cleanup(): Promise<void> {
    await this.stopServing();
    await rm(this.dir, { recursive: true, force: true });
  }
}
