import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, readFile, readdir, writeFile, chmod, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { verifyContent } from '../../src/content/verify.ts';
import { sha256Digest } from '../../src/oci/digest.ts';
import { isKind } from '../../src/errors.ts';

let dir: string;
let store: LocalContentStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-content-'));
  store = await openContentStore(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const blob = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('local content store', () => {
  it('commits a verified blob read-only in containerd layout', async () => {
    const data = blob(100_000);
    const d = sha256Digest(data);
    const w = await store.writer({ ref: 'layer-1', expected: d, total: data.length });
    const ingest = store.ingestPath('layer-1');
    expect(await readFile(join(ingest, 'ref'), 'utf8')).toBe('layer-1');
    expect(await readFile(join(ingest, 'total'), 'utf8')).toBe('100000');
    await w.write(data.subarray(0, 5000));
    await w.write(data.subarray(5000));
    await w.commit(data.length, d);
    const p = join(dir, 'io.containerd.content.v1.content/blobs/sha256', d.slice(7));
    expect(store.blobPath(d)).toBe(p);
    expect((await stat(p)).mode & 0o777).toBe(0o444);
    expect(await readFile(p)).toEqual(data);
    expect(await store.readBlob(d)).toEqual(data);
    expect((await store.info(d)).size).toBe(data.length);
    await expect(stat(ingest)).rejects.toThrow();
    const all = [];
    for await (const i of store.walk()) all.push(i.digest);
    expect(all).toEqual([d]);
  });

  it('refuses a digest mismatch, naming ref, expected and found; nothing committed', async () => {
    const data = blob(1000);
    const wrong = sha256Digest('other');
    const w = await store.writer({ ref: 'bad', expected: wrong });
    await w.write(data);
    const err = await w.commit(data.length, wrong).catch((e) => e);
    expect(isKind(err, 'Corrupt')).toBe(true);
    expect(err.message).toContain('bad');
    expect(err.message).toContain(wrong);
    expect(err.message).toContain(sha256Digest(data));
    expect(await store.has(wrong)).toBe(false);
    expect(await readdir(store.ingestDir)).toEqual([]);
    expect(await readdir(store.blobsDir)).toEqual([]);
  });

  it('refuses a size mismatch', async () => {
    const data = blob(10);
    const w = await store.writer({ ref: 'short' });
    await w.write(data);
    await expect(w.commit(11, sha256Digest(data))).rejects.toThrow(/size mismatch.*expected 11 bytes, got 10/);
  });

  it('resumes an ingest from the bytes on disk, and truncate starts over', async () => {
    const data = blob(50_000, 7);
    const d = sha256Digest(data);
    const w1 = await store.writer({ ref: 'r', expected: d, total: data.length });
    await w1.write(data.subarray(0, 20_000));
    await w1.close();
    expect((await store.listIngests())[0]).toMatchObject({ ref: 'r', offset: 20_000, total: 50_000 });
    const w2 = await store.writer({ ref: 'r', expected: d, total: data.length });
    expect(w2.offset).toBe(20_000);
    await w2.write(data.subarray(20_000));
    await w2.commit(data.length, d);
    expect(await store.readBlob(d)).toEqual(data);

    const w3 = await store.writer({ ref: 'r2', expected: d, total: data.length });
    await w3.write(Buffer.from('garbage'));
    await w3.truncate();
    expect(w3.offset).toBe(0);
    await w3.write(data);
    await w3.commit(data.length, d); // already exists: not an error
    expect(await readdir(store.ingestDir)).toEqual([]);
  });

  it('a second writer of one ref waits for the first (in process)', async () => {
    const w1 = await store.writer({ ref: 'same' });
    let second = false;
    const p = store.writer({ ref: 'same' }).then((w) => {
      second = true;
      return w;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(second).toBe(false);
    await w1.close();
    const w2 = await p;
    expect(second).toBe(true);
    await w2.close();
    const ac = new AbortController();
    const w3 = await store.writer({ ref: 'same' });
    setTimeout(() => ac.abort(), 50);
    const err = await store.writer({ ref: 'same', signal: ac.signal }).catch((e) => e);
    expect(isKind(err, 'Unavailable')).toBe(true);
    await w3.close();
  });

  it('takes over the lock of a writer process killed with -9, and resumes from the bytes on disk', async () => {
    const data = blob(3 << 20, 3);
    const d = sha256Digest(data);
    const written = 1_500_000;
    const script = `
      import { openContentStore } from ${JSON.stringify(join(process.cwd(), 'src/content/local-store.ts'))};
      const s = await openContentStore(${JSON.stringify(dir)});
      const w = await s.writer({ ref: 'killed', total: ${data.length} });
      const bytes = Buffer.alloc(${written}).map((_, i) => (i * 31 + 3) & 0xff);
      for (let o = 0; o < bytes.length; o += 65536) await w.write(bytes.subarray(o, Math.min(o + 65536, bytes.length)));
      console.log('ready');
      setInterval(() => {}, 1000);`;
    const child = spawn(join(process.cwd(), 'node_modules/.bin/node'), ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (b) => String(b).includes('ready') && resolve());
      child.on('exit', (c) => reject(new Error(`child exited ${c}`)));
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(store.writer({ ref: 'killed', signal: ac.signal })).rejects.toThrow(/lock/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const onDisk = (await stat(join(store.ingestPath('killed'), 'data'))).size;
    expect(onDisk).toBeGreaterThanOrEqual(1 << 20); // written in 1 MiB batches; the tail may be lost
    const w = await store.writer({ ref: 'killed', total: data.length, signal: AbortSignal.timeout(5000) });
    expect(w.offset).toBe(onDisk);
    await w.write(data.subarray(onDisk));
    await w.commit(data.length, d);
    expect((await store.readBlob(d)).equals(data)).toBe(true);
  });

  it('removes stale ingests but keeps live and fresh ones', async () => {
    const old = await store.writer({ ref: 'old' });
    await old.write(Buffer.from('x'));
    await old.close();
    const live = await store.writer({ ref: 'live' });
    await live.write(Buffer.from('y'));
    const fresh = await store.writer({ ref: 'fresh' });
    await fresh.close();
    const past = new Date(Date.now() - 3_600_000);
    for (const ref of ['old', 'live']) {
      const p = store.ingestPath(ref);
      await writeFile(join(p, 'updatedat'), past.toISOString());
      await utimes(join(p, 'data'), past, past);
    }
    // A lock left by a dead process (pid 4194305 is above any pid_max, so it never runs).
    await writeFile(join(store.locksDir, 'dead.lock'), '4194305 1\n');
    const removed = await store.removeStaleIngests(60_000);
    expect(removed).toEqual(['old']);
    const locks = await readdir(store.locksDir);
    expect(locks).not.toContain('dead.lock');
    expect(locks).toContain(`${store.lockPath('live').split('/').pop()}`);
    expect((await store.listIngests()).map((i) => i.ref).sort()).toEqual(['fresh', 'live']);
    await live.close();
  });

  it('verify finds a corrupted blob', async () => {
    const a = blob(100, 1);
    const b = blob(100, 2);
    for (const [ref, data] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const w = await store.writer({ ref });
      await w.write(data);
      await w.commit(data.length, sha256Digest(data));
    }
    const p = store.blobPath(sha256Digest(b));
    await chmod(p, 0o644);
    await writeFile(p, blob(100, 9));
    const results = [];
    for await (const r of verifyContent(store)) results.push(r);
    expect(results.find((r) => r.digest === sha256Digest(a))?.ok).toBe(true);
    const bad = results.find((r) => r.digest === sha256Digest(b))!;
    expect(bad.ok).toBe(false);
    expect(bad.found).toBe(sha256Digest(blob(100, 9)));
  });

  it('delete removes a blob; missing blobs are NotFound', async () => {
    const data = blob(10);
    const w = await store.writer({ ref: 'd' });
    await w.write(data);
    await w.commit(10, sha256Digest(data));
    await store.delete(sha256Digest(data));
    expect(isKind(await store.info(sha256Digest(data)).catch((e) => e), 'NotFound')).toBe(true);
    expect(isKind(await store.readBlob(sha256Digest(data)).catch((e) => e), 'NotFound')).toBe(true);
  });
});
