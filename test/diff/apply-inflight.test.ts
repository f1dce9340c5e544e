/**
 * Files of 64 KiB and more are written on the thread pool while later entries are applied
 * (src/diff/file-writer.ts). These cases check what could go wrong with a file still in flight:
 * its attributes, a hardlink to it, a later entry replacing or deleting it, and a failure (the
 * files in flight must be closed before the apply rejects, or their snapshot could not be removed).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer, type WhiteoutMode } from '../../src/diff/apply.ts';
import { BerthError } from '../../src/errors.ts';
import { compressLayer, makeLayerTar, type LayerEntry } from '../helpers/layers.ts';

let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/diff needs root (lchown, mknod, tmpfs)');
  tmp = mkdtempSync(`${tmpdir()}/berth-inflight-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function freshRoot(): string {
  const d = `${tmp}/r${n++}`;
  mkdirSync(d);
  return d;
}

/** Content that is the same for the same seed, and different from any other seed's. */
function content(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(String(seed)).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/**
 * Uncompressed and in one chunk: the whole layer is parsed without waiting for input, so the
 * entries after a big file are applied before its write on the thread pool can have finished.
 */
async function apply(root: string, entries: LayerEntry[], whiteouts: WhiteoutMode = 'overlay') {
  const layer = compressLayer(await makeLayerTar(entries), 'none');
  return applyLayer(Readable.from([layer.blob]), { root, mediaType: layer.mediaType, whiteouts, expectedDiffId: layer.diffId, layerDigest: layer.digest });
}

const MTIME = new Date('2021-03-04T05:06:07Z');

describe('applyLayer: files written while later entries are applied', () => {
  it('writes many big files with their contents, owners, modes and times', async () => {
    const root = freshRoot();
    const files = Array.from({ length: 40 }, (_, i) => ({
      name: `d/f${i}`,
      data: content(i, 64 * 1024 + i * 7919),
      mode: [0o644, 0o755, 0o4755, 0o2750, 0o600][i % 5]!,
      uid: i % 3,
      gid: 100 + (i % 4),
    }));
    await apply(root, [
      { type: 'dir', name: 'd' },
      ...files.map((f) => ({ type: 'file' as const, name: f.name, content: f.data, mode: f.mode, uid: f.uid, gid: f.gid, mtime: MTIME })),
    ]);
    for (const f of files) {
      const st = lstatSync(`${root}/${f.name}`);
      expect({ name: f.name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtimeMs }).toEqual({
        name: f.name,
        mode: f.mode,
        uid: f.uid,
        gid: f.gid,
        mtime: MTIME.getTime(),
      });
      expect(readFileSync(`${root}/${f.name}`).equals(f.data)).toBe(true);
    }
  });

  it('gives a hardlink to a file in flight the link’s attributes, as containerd does', async () => {
    const root = freshRoot();
    await apply(root, [
      { type: 'file', name: 'big', content: content(1, 256 * 1024), mode: 0o644, uid: 1, gid: 1, mtime: new Date('2020-01-01T00:00:00Z') },
      { type: 'link', name: 'big-link', target: 'big', mode: 0o4711, uid: 7, gid: 8, mtime: MTIME },
    ]);
    const st = lstatSync(`${root}/big`);
    expect({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, nlink: st.nlink, mtime: st.mtimeMs }).toEqual({
      mode: 0o4711,
      uid: 7,
      gid: 8,
      nlink: 2,
      mtime: MTIME.getTime(),
    });
    expect(readFileSync(`${root}/big-link`).equals(content(1, 256 * 1024))).toBe(true);
  });

  for (const whiteouts of ['overlay', 'native'] as const) {
    it(`lets a later entry replace or delete a file in flight (${whiteouts})`, async () => {
      const root = freshRoot();
      await apply(
        root,
        [
          { type: 'file', name: 'replaced', content: content(2, 512 * 1024), mode: 0o600 },
          { type: 'file', name: 'deleted', content: content(3, 512 * 1024) },
          { type: 'file', name: 'becomes-dir', content: content(4, 512 * 1024) },
          { type: 'file', name: 'replaced', content: 'small now', mode: 0o640, uid: 3, mtime: MTIME },
          { type: 'whiteout', name: 'deleted' },
          { type: 'dir', name: 'becomes-dir', mode: 0o750 },
        ],
        whiteouts,
      );
      const st = lstatSync(`${root}/replaced`);
      expect({ text: readFileSync(`${root}/replaced`, 'utf8'), mode: st.mode & 0o7777, uid: st.uid, size: st.size, mtime: st.mtimeMs }).toEqual({
        text: 'small now',
        mode: 0o640,
        uid: 3,
        size: 9,
        mtime: MTIME.getTime(),
      });
      const deleted = lstatSync(`${root}/deleted`, { throwIfNoEntry: false });
      if (whiteouts === 'native') expect(deleted).toBeUndefined();
      else expect(deleted?.isCharacterDevice() && deleted.rdev).toBe(0);
      expect(lstatSync(`${root}/becomes-dir`).isDirectory()).toBe(true);
    });
  }

  /** Run `fn` with a root on a tmpfs of its own, which must unmount afterwards (no fd left open). */
  async function onTmpfs(size: string, fn: (root: string) => Promise<void>): Promise<void> {
    const mnt = mkdtempSync(`${tmp}/tmpfs-`);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
    try {
      mkdirSync(`${mnt}/root`);
      await fn(`${mnt}/root`);
      // An fd left open keeps the filesystem busy.
      execFileSync('umount', [mnt]);
    } finally {
      try {
        execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
      } catch {
        /* unmounted above */
      }
      rmSync(mnt, { recursive: true, force: true });
    }
  }

  const bigFiles = (count: number) => Array.from({ length: count }, (_, i) => ({ type: 'file' as const, name: `f${i}`, content: content(i, 256 * 1024) }));

  it('closes the files in flight before it rejects', async () => {
    await onTmpfs('64m', async (root) => {
      const err = await apply(root, [...bigFiles(8), { type: 'file', name: '.wh..', content: '' }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BerthError);
      expect((err as BerthError).kind).toBe('InvalidArgument');
    });
  });

  it('reports a full disk found by a write in flight as ResourceExhausted', async () => {
    await onTmpfs('4m', async (root) => {
      const layer = compressLayer(await makeLayerTar(bigFiles(32)), 'none');
      const err = await applyLayer(Readable.from([layer.blob]), {
        root,
        mediaType: layer.mediaType,
        whiteouts: 'overlay',
        layerDigest: layer.digest,
        limits: { reserveBytes: 0 }, // let the writes themselves find the disk full
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BerthError);
      expect((err as BerthError).kind).toBe('ResourceExhausted');
    });
  });
});
