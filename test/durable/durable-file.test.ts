import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsyncDir, fsyncDirSync, ifExists, isMissing, writeFileAtomic } from '../../src/durable-file.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-durable-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file whole, makes missing parents, and leaves no temp file', async () => {
    const file = join(dir, 'a', 'b', 'state.json');
    await writeFileAtomic(file, 'first');
    await writeFileAtomic(file, 'second, longer');
    expect(await readFile(file, 'utf8')).toBe('second, longer');
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['state.json']);
  });

  it('gives a new file the mode asked for', async () => {
    const file = join(dir, 'secret');
    await writeFileAtomic(file, 'x', { mode: 0o600 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await writeFileAtomic(join(dir, 'plain'), 'x');
    expect((await stat(join(dir, 'plain'))).mode & 0o777).toBe(0o644 & ~process.umask());
  });

  it('writes bytes, and writes without fsync when told', async () => {
    await writeFileAtomic(join(dir, 'bin'), new Uint8Array([1, 2, 3]), { syncFile: false });
    expect([...(await readFile(join(dir, 'bin')))]).toEqual([1, 2, 3]);
    await writeFileAtomic(join(dir, 'nodir'), 'y', { syncDir: false });
    expect(await readFile(join(dir, 'nodir'), 'utf8')).toBe('y');
  });

  it('removes its temp file when the rename fails, and leaves the target as it was', async () => {
    const target = join(dir, 'taken');
    await mkdir(join(target, 'inside'), { recursive: true });
    await expect(writeFileAtomic(target, 'data')).rejects.toMatchObject({ code: 'EISDIR' });
    expect((await readdir(dir)).sort()).toEqual(['taken']);
    expect(await readdir(target)).toEqual(['inside']);
  });
});

describe('fsyncDir', () => {
  it('syncs an existing directory and fails on a missing one', async () => {
    await fsyncDir(dir);
    fsyncDirSync(dir);
    await expect(fsyncDir(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => fsyncDirSync(join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('ifExists', () => {
  it('is undefined for a missing path or one below a file, and passes other errors', async () => {
    await writeFile(join(dir, 'file'), 'text');
    expect(await ifExists(readFile(join(dir, 'file'), 'utf8'))).toBe('text');
    expect(await ifExists(readFile(join(dir, 'missing'), 'utf8'))).toBeUndefined();
    expect(await ifExists(readFile(join(dir, 'file', 'below'), 'utf8'))).toBeUndefined();
    await expect(ifExists(readFile(dir, 'utf8'))).rejects.toMatchObject({ code: 'EISDIR' });
    expect(isMissing(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(true);
    expect(isMissing(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isMissing(undefined)).toBe(false);
  });
});
