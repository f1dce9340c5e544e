/**
 * The lab's real-distro image, `debian:multi`, and `debian:multi-zstd`, the same layers
 * compressed with zstd instead of gzip (same diff IDs and config). Four layers, each a kind of
 * work an unpacker must do well:
 *   1. base: a debootstrap minbase bookworm rootfs (about 200 MB: devices, hard links, setuid);
 *   2. many small files: 2,000 text files in 200 directories (about 20 MB);
 *   3. one 64 MiB incompressible file;
 *   4. deletions: whiteouts of usr/share/doc, usr/share/locale and a directory of layer 2.
 *
 * Both are cached as OCI layouts under `cacheDir` (the rootfs too), so only the first bench on a
 * machine pays for debootstrap (a download from the Debian mirror apt uses) and compression.
 * Every cache entry is built beside its final name and renamed into place: present means whole.
 */
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatPlatform, hostPlatform } from '../../src/oci/platform.ts';
import { buildImage, writeOciLayout, type BuiltImage } from '../helpers/images.ts';
import { makeLayerTar, type LayerEntry } from '../helpers/layers.ts';
import { debianMirror } from './debian-mirror.ts';
import { readOciLayout } from './read-layout.ts';

const SUITE = 'bookworm';
/** Bump when the recipe below changes, so caches built by the old one are not used. */
const RECIPE = 'debian-multi-v1';
const TAGS = { gzip: 'multi', zstd: 'multi-zstd' } as const;

export type DebianVariant = keyof typeof TAGS;

/** The cached image of one variant (built first if the cache lacks it). */
export async function debianMultiImage(
  cacheDir: string,
  variant: DebianVariant,
  opts: { signal?: AbortSignal; log?: (msg: string) => void } = {},
): Promise<BuiltImage> {
  const dir = join(cacheDir, RECIPE);
  if (!(await exists(dir))) await buildLayouts(cacheDir, dir, opts);
  return readOciLayout(join(dir, TAGS[variant]));
}

async function buildLayouts(cacheDir: string, dir: string, opts: { signal?: AbortSignal; log?: (msg: string) => void }): Promise<void> {
  const rootfs = await debootstrapRootfs(cacheDir, opts);
  opts.log?.(`lab: building debian:${TAGS.gzip} and debian:${TAGS.zstd} from ${rootfs}`);
  const tars = [
    await tarDirectory(rootfs, opts.signal),
    await makeLayerTar(manySmallFiles()),
    await makeLayerTar(bigRandomFile()),
    await makeLayerTar(deletions()),
  ];
  const tmp = await mkdtemp(join(cacheDir, `.${RECIPE}-`));
  try {
    for (const [variant, tag] of Object.entries(TAGS) as Array<[DebianVariant, string]>) {
      opts.signal?.throwIfAborted();
      const img = await buildImage({
        platform: formatPlatform(hostPlatform()),
        layers: tars.map((tar) => ({ tar, compression: variant })),
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/bash'] },
      });
      await writeOciLayout(join(tmp, tag), img, tag);
    }
    await renameIntoPlace(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A minbase rootfs of SUITE, made once per cache dir. */
async function debootstrapRootfs(cacheDir: string, opts: { signal?: AbortSignal; log?: (msg: string) => void }): Promise<string> {
  const dir = join(cacheDir, `rootfs-${SUITE}-minbase`);
  if (await exists(dir)) return dir;
  if (process.getuid?.() !== 0) throw new Error('building the lab image debian:multi needs root (debootstrap)');
  await mkdir(cacheDir, { recursive: true });
  const mirror = await debianMirror();
  const tmp = await mkdtemp(join(cacheDir, '.rootfs-'));
  const logFile = `${tmp}.log`;
  opts.log?.(`lab: debootstrap --variant=minbase ${SUITE} from ${mirror} (once; log in ${logFile})`);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const out = createWriteStream(logFile);
      const p = spawn('debootstrap', ['--variant=minbase', SUITE, tmp, mirror], { stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
      p.stdout.pipe(out);
      p.stderr.pipe(out, { end: false });
      p.on('error', (err) => reject(new Error(`debootstrap could not run (apt-get install debootstrap): ${err.message}`)));
      p.on('close', resolve);
    });
    if (code !== 0) {
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`debootstrap exited ${code}:\n${tail}`);
    }
    await renameIntoPlace(tmp, dir);
    await rm(logFile, { force: true });
    return dir;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** GNU tar of a directory's contents as a layer (names without `./`, numeric owners, xattrs). */
async function tarDirectory(dir: string, signal?: AbortSignal): Promise<Buffer> {
  const names = (await readdir(dir)).sort();
  const args = [
    '--create',
    '--file=-',
    '--format=pax',
    '--pax-option=delete=atime,delete=ctime',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '--sort=name',
    '-C',
    dir,
    '--',
    ...names,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stderr.on('data', (c) => (err += String(c)));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`tar of ${dir} exited ${code}: ${err}`))));
  });
}

/** Layer 2: 200 directories of 10 text files each, 1–20 KiB, the same every time (seeded). */
function manySmallFiles(): LayerEntry[] {
  const random = seededRandom(0xb0a7);
  const words = [
    'berth',
    'layer',
    'snapshot',
    'digest',
    'manifest',
    'overlay',
    'runc',
    'index',
    'config',
    'blob',
    'lease',
    'reconcile',
    'export',
    'const',
    'function',
    'return',
    'module',
    'require',
    'await',
    'async',
  ];
  const entries: LayerEntry[] = [
    { type: 'dir', name: 'opt' },
    { type: 'dir', name: 'opt/many' },
  ];
  for (let d = 0; d < 200; d++) {
    // Directory 0 is `docs`, which layer 4 deletes.
    const dir = `opt/many/${d === 0 ? 'docs' : `lib${d}`}`;
    entries.push({ type: 'dir', name: dir });
    for (let f = 0; f < 10; f++) {
      const size = 1024 + Math.floor(random() * 19 * 1024);
      let text = '';
      while (text.length < size) text += `${words[Math.floor(random() * words.length)]}${random() < 0.1 ? '\n' : ' '}`;
      entries.push({ type: 'file', name: `${dir}/file${f}.js`, content: text.slice(0, size) });
    }
  }
  return entries;
}

/** Layer 3: 64 MiB that no compressor shrinks (AES-CTR keystream: random-looking, yet the same every time). */
function bigRandomFile(): LayerEntry[] {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16));
  const content = Buffer.concat([cipher.update(Buffer.alloc(64 << 20)), cipher.final()]);
  return [
    { type: 'dir', name: 'opt' },
    { type: 'file', name: 'opt/blob.bin', content },
  ];
}

/** Layer 4: deletions of whole trees from the layers below. */
function deletions(): LayerEntry[] {
  return [
    { type: 'whiteout', name: 'usr/share/doc' },
    { type: 'whiteout', name: 'usr/share/locale' },
    { type: 'whiteout', name: 'opt/many/docs' },
  ];
}

/** mulberry32: a tiny seeded PRNG, so the many-small-files layer has the same digest every build. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rename a finished build into place; if another process got there first, theirs stands. */
async function renameIntoPlace(tmp: string, dir: string): Promise<void> {
  try {
    await rename(tmp, dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(dir))) return;
    throw err;
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
