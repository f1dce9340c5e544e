/**
 * kill -9 during a sync (mid-fetch, mid-verify, mid-checkout, mid-switch: a random point each
 * time, in a process of its own), then a look at what is current: always a whole revision, every
 * file of one commit, never a half-extracted tree. A later sync removes what the killed one left
 * and makes the newest revision current. A leftover checkout without its marker (a power cut before
 * the data reached the disk) is never trusted.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE } from '../helpers/e2e.ts';
import { GitFixture } from './git-fixture.ts';

const FILES = 400;
let f: GitFixture;
let root: string;

beforeAll(async () => {
  f = await GitFixture.create();
  root = await mkdtemp(join(tmpdir(), 'berth-source-crash-'));
});

afterAll(async () => {
  await f?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

const revisionFiles = (rev: number) =>
  Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`devices/f${i}.yaml`, `rev: ${rev}\nfile: ${i}\n${'x'.repeat(2000)}\n`]));

function syncChild(): { done: Promise<string>; kill: () => void; started: Promise<void> } {
  const child = spawn(NODE, ['test/source/sync-child.ts', root, f.fileUrl, f.allowedSigners], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  child.stdout.on('data', (b) => {
    out += String(b);
    if (out.includes('syncing')) started();
  });
  child.stderr.on('data', (b) => (out += String(b)));
  const done = new Promise<string>((r) => child.on('close', () => (started(), r(out))));
  return { done, kill: () => child.kill('SIGKILL'), started: startedP };
}

/** What `current` names, checked whole: the marker matches and every file is of one revision. */
async function wholeCurrent(): Promise<{ commit: string; rev: number } | undefined> {
  const sources = join(root, 'sources');
  const target = await readlink(join(sources, 'current')).catch(() => undefined);
  if (target === undefined) return undefined;
  const marker = JSON.parse(await readFile(join(sources, target, '.berth-revision'), 'utf8'));
  expect(marker.commit).toBe(target);
  const names = await readdir(join(sources, 'current', 'devices'));
  expect(names).toHaveLength(FILES);
  const revs = new Set<string>();
  for (const n of names) revs.add((await readFile(join(sources, 'current', 'devices', n), 'utf8')).split('\n')[0]!);
  expect([...revs]).toHaveLength(1);
  return { commit: target, rev: Number([...revs][0]!.slice(5)) };
}

describe('a sync killed at any point', () => {
  it('leaves the previous or the new revision current, whole; the next sync finishes the job', async () => {
    // How long one undisturbed sync takes, so the kills land all over it.
    await f.commit(revisionFiles(0));
    const t0 = performance.now();
    const first = syncChild();
    await first.done;
    const full = performance.now() - t0;
    expect((await wholeCurrent())?.rev).toBe(0);

    const seen = new Set<string>();
    for (let rev = 1; rev <= 8; rev++) {
      await f.commit(revisionFiles(rev));
      const c = syncChild();
      await c.started;
      await new Promise((r) => setTimeout(r, Math.random() * full));
      c.kill();
      const out = await c.done;
      seen.add(out.includes('"changed":true') ? 'finished' : 'killed');
      const cur = await wholeCurrent();
      expect(cur).toBeDefined();
      expect([rev - 1, rev]).toContain(cur!.rev);
      if (cur!.rev !== rev) {
        // Not switched: the next sync makes it so, removing what the killed one left behind.
        const again = syncChild();
        expect(await again.done).toContain('"changed":true');
        expect((await wholeCurrent())?.rev).toBe(rev);
      }
      const left = (await readdir(join(root, 'sources'))).filter((n) => n.startsWith('.tmp-') || n === 'current.tmp');
      expect(left).toEqual([]);
    }
    console.log(`one sync of ${FILES} files: ${Math.round(full)} ms; runs ${[...seen].join(' and ')}`);
    expect(seen.has('killed')).toBe(true);
  }, 300_000);

  it('never trusts a half-made checkout left by a power cut, nor stops at a lock git left', async () => {
    const sources = join(root, 'sources');
    if (!(await wholeCurrent())) {
      await f.commit(revisionFiles(98));
      await syncChild().done;
    }
    const before = await wholeCurrent();
    const next = await f.commit(revisionFiles(99));
    // As a power cut could leave it: a temp checkout, a dangling current.tmp, and the new commit's
    // directory already named but without its marker (its data never reached the disk).
    await mkdir(join(sources, `.tmp-${next}-abc`), { recursive: true });
    await writeFile(join(sources, `.tmp-${next}-abc`, 'f0.yaml'), 'rev: half\n');
    await symlink(`.tmp-${next}-abc`, join(sources, 'current.tmp'));
    await mkdir(join(sources, next, 'devices'), { recursive: true });
    await writeFile(join(sources, next, 'devices', 'f0.yaml'), '');
    // And git killed mid-fetch: its ref lock is still there.
    await writeFile(join(sources, 'repo.git', 'refs', 'berth', 'fetched.lock'), '');
    expect((await wholeCurrent())?.commit).toBe(before!.commit);
    const out = await syncChild().done;
    expect(out).toContain('"changed":true');
    expect((await wholeCurrent())?.rev).toBe(99);
    expect((await readdir(sources)).filter((n) => n.startsWith('.tmp-') || n === 'current.tmp')).toEqual([]);
  }, 120_000);
});
