/**
 * GitSource against a real git remote served by `git daemon` on loopback: a commit signed with an
 * allowed ssh key is checked out and made current; an unsigned one, one signed by a key not in
 * allowed_signers and a force-push back to an older commit are refused with the reason in the
 * status and nothing changed; a signed fix after a refusal is applied; an unreachable remote is a
 * condition, and what was applied is known without it; only the last three revisions are kept.
 */
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GitSourceConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/log.ts';
import { GitSource } from '../../src/source/git.ts';
import { ALLOWED_PRINCIPAL, GitFixture } from './git-fixture.ts';

let f: GitFixture;
let root: string;
const log = createLogger({ level: 'silent' });
const signal = new AbortController().signal;

beforeAll(async () => {
  f = await GitFixture.create();
  await f.serve();
  root = await mkdtemp(join(tmpdir(), 'berth-source-'));
});

afterAll(async () => {
  await f?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

function source(over: Partial<GitSourceConfig> = {}, at = root): GitSource {
  const config: GitSourceConfig = {
    url: f.daemonUrl,
    ref: 'main',
    path: 'devices',
    intervalMs: 60_000,
    allowRewind: false,
    verify: { mode: 'ssh', allowedSigners: f.allowedSigners },
    ...over,
  };
  return new GitSource({ root: at, config, log });
}

const sources = () => join(root, 'sources');
const currentCommit = async () => readlink(join(sources(), 'current'));
const currentFile = (name: string) => readFile(join(sources(), 'current', 'devices', name), 'utf8');

describe('GitSource', () => {
  let first: string;

  it('applies a commit signed with an allowed ssh key', async () => {
    first = await f.commit({ 'devices/web.yaml': 'v: 1\n', 'README.md': 'fleet\n' });
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Ready', reason: 'Applied', changed: true, fetched: first, applied: first, signer: ALLOWED_PRINCIPAL });
    expect(await currentCommit()).toBe(first);
    expect(await currentFile('web.yaml')).toBe('v: 1\n');
    expect(JSON.parse(await readFile(join(sources(), first, '.berth-revision'), 'utf8'))).toMatchObject({ commit: first, signer: ALLOWED_PRINCIPAL });
    expect(await source().currentDir()).toBe(join(sources(), 'current', 'devices'));
  });

  it('refuses an unsigned commit: the status names it, nothing changes', async () => {
    const unsigned = await f.commit({ 'devices/web.yaml': 'v: unsigned\n' }, false);
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Stalled', reason: 'NotSigned', changed: false, fetched: unsigned, applied: first });
    expect(s.message).toContain(`commit ${unsigned.slice(0, 12)} is not signed`);
    expect(await currentCommit()).toBe(first);
    expect(await currentFile('web.yaml')).toBe('v: 1\n');
    expect(await readdir(sources())).not.toContain(unsigned);
  });

  it('refuses a commit signed by a key not in allowed_signers', async () => {
    const other = await f.commit({ 'devices/web.yaml': 'v: other\n' }, 'other');
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Stalled', reason: 'SignerNotAllowed', fetched: other, applied: first });
    expect(s.message).toContain('not signed by an allowed key');
    expect(await currentCommit()).toBe(first);
    expect(await readdir(sources())).not.toContain(other);
  });

  let fix: string;
  it('applies a signed fix after a refused commit', async () => {
    fix = await f.commit({ 'devices/web.yaml': 'v: 2\n' });
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Ready', reason: 'Applied', applied: fix, changed: true });
    expect(await currentFile('web.yaml')).toBe('v: 2\n');
  });

  it('refuses a force-push back to an older (signed) commit, unless allow_rewind', async () => {
    await f.push(first);
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Stalled', reason: 'Rewound', fetched: first, applied: fix });
    expect(await currentCommit()).toBe(fix);
    const allowed = await source({ allowRewind: true }).sync(signal);
    expect(allowed).toMatchObject({ state: 'Ready', applied: first, changed: true });
    expect(await currentFile('web.yaml')).toBe('v: 1\n');
    await f.push(fix);
    expect(await source().sync(signal)).toMatchObject({ applied: fix, state: 'Ready' });
  });

  it('refuses a revision whose manifests link out of it', async () => {
    const { symlink } = await import('node:fs/promises');
    await symlink('/etc/passwd', join(f.work, 'devices', 'passwd.yaml'));
    const bad = await f.commit({});
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Stalled', reason: 'CheckoutFailed', fetched: bad, applied: fix });
    expect(s.message).toContain('devices/passwd.yaml links out of the revision (to /etc/passwd)');
    expect(await currentCommit()).toBe(fix);
    expect((await readdir(sources())).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    fix = await f.commit({ 'devices/passwd.yaml': null });
    expect(await source().sync(signal)).toMatchObject({ state: 'Ready', applied: fix });
  });

  it('an unreachable remote is a condition; what is applied is known without it', async () => {
    await f.stopServing();
    const s = await source().sync(signal);
    expect(s).toMatchObject({ state: 'Reconciling', reason: 'Unreachable', applied: fix, changed: false });
    expect(s.lastError).toMatch(/fetch of main from git:\/\/127\.0\.0\.1:\d+\/fleet\.git failed/);
    expect(await currentCommit()).toBe(fix);
    const atBoot = source();
    expect(await atBoot.load()).toMatchObject({ applied: fix, signer: ALLOWED_PRINCIPAL });
    expect(await atBoot.currentDir()).toBe(join(sources(), 'current', 'devices'));
    await f.serve();
  });

  it('a remote that accepts and then says nothing is unreachable after the fetch timeout', async () => {
    const { createServer } = await import('node:net');
    const held: import('node:net').Socket[] = [];
    const silent = createServer((sock) => held.push(sock)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `git://127.0.0.1:${(silent.address() as { port: number }).port}/fleet.git`;
      const s = await new GitSource({
        root,
        config: { url, ref: 'main', path: 'devices', intervalMs: 60_000, allowRewind: false },
        log,
        fetchTimeoutMs: 1500,
      }).sync(signal);
      expect(s).toMatchObject({ state: 'Reconciling', reason: 'Unreachable', applied: fix });
      expect(s.lastError).toContain('no answer within 2 s');
    } finally {
      for (const sock of held) sock.destroy();
      silent.close();
    }
  });

  it('keeps the last three revisions, the current one among them', async () => {
    const commits: string[] = [];
    for (let i = 3; i < 7; i++) {
      await f.resetTo(fix);
      commits.push((fix = await f.commit({ 'devices/web.yaml': `v: ${i}\n` })));
      expect(await source({ url: f.fileUrl }).sync(signal)).toMatchObject({ applied: fix, changed: true });
    }
    const dirs = (await readdir(sources())).filter((n) => /^[0-9a-f]{40}$/.test(n)).sort();
    expect(dirs).toEqual(commits.slice(-3).sort());
  });

  it('fetches only what the ref needs: the first fetch one commit, later ones the commits since', async () => {
    const { execFile } = await import('node:child_process');
    const other = await mkdtemp(join(tmpdir(), 'berth-source-depth-'));
    try {
      const count = () =>
        new Promise<number>((resolve, reject) =>
          execFile('git', [`--git-dir=${join(other, 'sources', 'repo.git')}`, 'rev-list', '--count', '--all'], (err, out) =>
            err ? reject(err) : resolve(Number(out.trim())),
          ),
        );
      expect(await source({}, other).sync(signal)).toMatchObject({ state: 'Ready', changed: true });
      expect(await count()).toBe(1); // the history behind it (a dozen commits by now) was not fetched
      await f.commit({ 'devices/web.yaml': 'v: depth 1\n' });
      await f.commit({ 'devices/web.yaml': 'v: depth 2\n' });
      expect(await source({}, other).sync(signal)).toMatchObject({ state: 'Ready', changed: true });
      expect(await count()).toBe(3);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('runs git without hooks, system or global config: a hook in the mirror never runs', async () => {
    const { writeFile, chmod } = await import('node:fs/promises');
    const marker = join(root, 'hook-ran');
    const hook = join(sources(), 'repo.git', 'hooks', 'reference-transaction');
    await writeFile(hook, `#!/bin/sh\ntouch ${marker}\n`);
    await chmod(hook, 0o755);
    await f.commit({ 'devices/web.yaml': 'v: hooks\n' });
    expect(await source().sync(signal)).toMatchObject({ state: 'Ready', changed: true });
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
  });
});
