import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LayerSource } from '../../src/diff/apply-worker.ts';
import { selectLayerApplier } from '../../src/diff/layer-applier.ts';
import { followBlob } from '../../src/diff/live-blob.ts';
import { unpackImage } from '../../src/images/unpack.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import { compressLayer, makeLayerTar } from '../helpers/layers.ts';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(`${tmpdir()}/berth-live-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const collect = async (r: Readable) => {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('followBlob: reading a blob while it downloads', () => {
  it('yields every byte as the ingest grows, across the rename into blobs/', async () => {
    const dir = `${tmp}/a`;
    mkdirSync(`${dir}/ingest`, { recursive: true });
    const data = randomBytes(3 << 20);
    let commit!: () => void;
    const committed = new Promise<void>((r) => (commit = r));
    const reader = collect(followBlob({ dataPath: `${dir}/ingest/data`, blobPath: `${dir}/blob`, size: data.length, committed, pollMs: 2 }));
    await sleep(20); // the reader waits for the file to appear
    for (let off = 0; off < data.length; off += 512 * 1024) {
      appendFileSync(`${dir}/ingest/data`, data.subarray(off, off + 512 * 1024));
      await sleep(5);
    }
    renameSync(`${dir}/ingest/data`, `${dir}/blob`);
    commit();
    expect((await reader).equals(data)).toBe(true);
  });

  it('allocates no fresh buffer for a read that finds no new bytes (a download slower than the apply)', async () => {
    const dir = `${tmp}/poll`;
    mkdirSync(`${dir}/ingest`, { recursive: true });
    const data = randomBytes(4 << 20);
    writeFileSync(`${dir}/ingest/data`, data.subarray(0, 1000));
    let commit!: () => void;
    const committed = new Promise<void>((r) => (commit = r));
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    try {
      const reader = collect(followBlob({ dataPath: `${dir}/ingest/data`, blobPath: `${dir}/blob`, size: data.length, committed, pollMs: 1 }));
      const bigAllocations = () => allocUnsafe.mock.calls.filter(([size]) => size >= 1 << 20).length;
      // Its first read allocates (on a loaded machine, later than at once); then it polls the file,
      // which does not grow: a few dozen empty reads, none of which may allocate again.
      for (let waited = 0; bigAllocations() === 0 && waited < 10_000; waited += 10) await sleep(10);
      await sleep(200);
      expect(bigAllocations()).toBe(1);
      appendFileSync(`${dir}/ingest/data`, data.subarray(1000));
      renameSync(`${dir}/ingest/data`, `${dir}/blob`);
      commit();
      expect((await reader).equals(data)).toBe(true);
      expect(bigAllocations()).toBeLessThanOrEqual(5); // one per MiB filled, then the tail
    } finally {
      allocUnsafe.mockRestore();
    }
  });

  it('reads a blob that is already committed', async () => {
    const dir = `${tmp}/b`;
    mkdirSync(dir);
    const data = randomBytes(100_000);
    writeFileSync(`${dir}/blob`, data);
    expect(
      (await collect(followBlob({ dataPath: `${dir}/none`, blobPath: `${dir}/blob`, size: data.length, committed: Promise.resolve() }))).equals(data),
    ).toBe(true);
  });

  it('fails when the ingest restarts (shrinks) or its commit fails', async () => {
    const dir = `${tmp}/c`;
    mkdirSync(dir);
    writeFileSync(`${dir}/data`, randomBytes(2 << 20));
    const it1 = followBlob({ dataPath: `${dir}/data`, blobPath: `${dir}/blob`, size: 4 << 20, committed: new Promise(() => {}), pollMs: 2 })[
      Symbol.asyncIterator
    ]();
    expect((await it1.next()).done).toBe(false); // some bytes were read…
    truncateSync(`${dir}/data`, 0); // …then the download starts over
    await expect(
      (async () => {
        while (!(await it1.next()).done);
      })(),
    ).rejects.toThrow(/restarted/);
    writeFileSync(`${dir}/data2`, randomBytes(1000));
    let fail!: (e: Error) => void;
    const committed = new Promise<void>((_, rej) => (fail = rej));
    const r2 = collect(followBlob({ dataPath: `${dir}/data2`, blobPath: `${dir}/blob2`, size: 5000, committed, pollMs: 2 }));
    await sleep(20);
    fail(new Error('digest mismatch'));
    await expect(r2).rejects.toThrow(/digest mismatch/);
  });
});

describe('unpackImage: speculative apply', () => {
  it('applies again from the stored blob when the bytes read during the download were wrong', async () => {
    const sn = await openSnapshotter(`${tmp}/root`, 'overlayfs');
    try {
      const l = compressLayer(await makeLayerTar([{ type: 'file', name: 'hello', content: 'right' }]), 'gzip');
      const wrong = compressLayer(await makeLayerTar([{ type: 'file', name: 'hello', content: 'wrong' }]), 'gzip');
      const attempts: number[] = [];
      const warnings: string[] = [];
      let commitsAwaited = 0;
      const chain = await unpackImage({
        layers: [{ mediaType: l.mediaType, digest: l.digest, size: l.size }],
        diffIds: [l.diffId],
        snapshotter: sn,
        signal: AbortSignal.timeout(10_000),
        speculative: true,
        beforeCommit: async () => {
          commitsAwaited++;
        },
        open: async (_d, _s, attempt) => {
          attempts.push(attempt);
          return Readable.from([attempt === 0 ? wrong.blob : l.blob]);
        },
        warn: (m) => warnings.push(m),
      });
      expect(attempts).toEqual([0, 1]);
      expect(commitsAwaited).toBe(1);
      expect(warnings.join()).toMatch(/applying the stored blob/);
      expect(chain).toEqual([l.diffId]);
      const all = [];
      for await (const s of sn.walk()) all.push(s.kind);
      expect(all).toEqual(['committed']);
    } finally {
      await sn.close();
    }
  });
});

describe('the native helper reading a blob while it downloads', () => {
  /**
   * A download the test plays: the ingest file grows in slices (with `restartAt`, it is cut back to
   * nothing there and written again, as a restarted download does), then is renamed into blobs/.
   */
  async function playDownload(dir: string, blob: Buffer, restartAt?: number) {
    const dataPath = `${dir}/ingest-data`;
    const blobPath = `${dir}/blob`;
    const slice = Math.ceil(blob.length / 8);
    let resolveCommit!: () => void;
    const committed = new Promise<void>((r) => (resolveCommit = r));
    const done = (async () => {
      writeFileSync(dataPath, '');
      for (let off = 0; off < blob.length; off += slice) {
        if (restartAt !== undefined && off === restartAt) {
          await sleep(100); // the helper has read what is there
          truncateSync(dataPath, 0);
          await sleep(100); // the helper looks while the file is short
          appendFileSync(dataPath, blob.subarray(0, off));
          restartAt = undefined;
        }
        appendFileSync(dataPath, blob.subarray(off, off + slice));
        await sleep(20);
      }
      renameSync(dataPath, blobPath);
      resolveCommit();
    })();
    return { dataPath, blobPath, committed, done };
  }

  for (const restarted of [false, true]) {
    it(restarted ? 'sees a restarted download and applies the stored blob instead' : 'applies the bytes as the file grows', async () => {
      const dir = `${tmp}/native-follow-${restarted}`;
      mkdirSync(dir, { recursive: true });
      const sn = await openSnapshotter(`${dir}/root`, 'overlayfs');
      try {
        const content = randomBytes(256 * 1024).toString('hex'); // 512 KiB that gzip cannot shrink much
        const l = compressLayer(await makeLayerTar([{ type: 'file', name: 'hello', content }]), 'gzip');
        const slice = Math.ceil(l.blob.length / 8);
        const applier = await selectLayerApplier('native', `${dir}/lib`); // built before the download starts
        const download = await playDownload(dir, l.blob, restarted ? 4 * slice : undefined);
        const sources: LayerSource['kind'][] = [];
        const warnings: string[] = [];
        const chain = await unpackImage({
          layers: [{ mediaType: l.mediaType, digest: l.digest, size: l.size }],
          diffIds: [l.diffId],
          snapshotter: sn,
          signal: AbortSignal.timeout(20_000),
          applier,
          speculative: true,
          beforeCommit: () => download.committed,
          open: async () => {
            throw new Error('the native helper reads the file itself: open() must not be called');
          },
          openSource: async (_d, _s, attempt) => {
            const kind = attempt === 0 ? 'follow' : 'file';
            sources.push(kind);
            if (kind === 'file') {
              await download.committed;
              return { kind, path: download.blobPath };
            }
            return { kind, dataPath: download.dataPath, blobPath: download.blobPath, size: l.size, committed: download.committed };
          },
          warn: (m) => warnings.push(m),
        });
        await download.done;
        expect(chain).toEqual([l.diffId]);
        expect(sources).toEqual(restarted ? ['follow', 'file'] : ['follow']);
        if (restarted) expect(warnings.join()).toMatch(/download restarted.*applying the stored blob/);
        const view = await sn.view('check', chain[0]!);
        const lower = view[0]!.options.find((o) => o.startsWith('lowerdir='))?.slice('lowerdir='.length) ?? view[0]!.source;
        expect(readFileSync(`${lower.split(':')[0]}/hello`, 'utf8')).toBe(content);
      } finally {
        await sn.close();
      }
    });
  }
});
