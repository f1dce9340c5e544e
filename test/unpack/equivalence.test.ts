/**
 * Equivalence with containerd as the oracle: images built here (whiteouts, opaque dirs, type
 * changes, hardlinks, xattrs, long paths, devices, gzip/zstd/plain layers, multi-platform) are
 * imported into a containerd started by this test (own root and socket in a temp dir) and mounted
 * with `ctr images mount`; berth unpacks the same blobs with both snapshotters, mounts a view,
 * and the two trees must be equal on path, type, mode, uid, gid, size, link target, device
 * number, content hash and xattrs.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectLayerApplier, type ApplyPath } from '../../src/diff/layer-applier.ts';
import { unpackImage } from '../../src/images/unpack.ts';
import { mountAll, unmount } from '../../src/snapshots/mount.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import type { Snapshotter } from '../../src/snapshots/snapshotter.ts';
import { buildImage, buildIndex, writeOciArchive, type BuiltImage } from '../helpers/images.ts';
import { makeLayerTar, type LayerEntry } from '../helpers/layers.ts';
import { startContainerd, type RunningContainerd } from '../lab/containerd.ts';
import { unmountUnder } from '../lab/mounts.ts';

let tmp: string;
let containerd: RunningContainerd | undefined;
const mounted: string[] = [];

async function ctr(...args: string[]): Promise<string> {
  return containerd!.ctr(args, { namespace: 'berth-eq' });
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('test/unpack needs root (mounts, containerd)');
  for (const bin of ['containerd', 'ctr', 'getfattr']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`]);
    } catch {
      throw new Error(`${bin} is not installed: the containerd equivalence test cannot run`);
    }
  }
  tmp = mkdtempSync(`${tmpdir()}/berth-eq-`);
  containerd = await startContainerd(`${tmp}/ctrd`, { signal: AbortSignal.timeout(30_000) });
}, 60_000);

afterAll(async () => {
  for (const m of mounted.reverse()) await unmount(m).catch(() => {});
  // Stops containerd and unmounts what it left under its root.
  await containerd?.stop();
  await unmountUnder(tmp);
  rmSync(tmp, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------ the images

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const LONG = 'long/' + 'a'.repeat(110) + '/' + 'b'.repeat(120);

const base: LayerEntry[] = [
  { type: 'dir', name: 'bin' },
  { type: 'file', name: 'bin/tool', content: 'tool v1', mode: 0o755 },
  { type: 'file', name: 'bin/su', content: 'su', mode: 0o4755 },
  { type: 'file', name: 'bin/wall', content: 'wall', mode: 0o2755, gid: 5 },
  { type: 'link', name: 'bin/su-hard', target: 'bin/su', mode: 0o4755 },
  { type: 'symlink', name: 'bin/sh', target: 'tool' },
  { type: 'file', name: 'bin/ping', content: 'ping', mode: 0o755, xattrs: { 'security.capability': CAP, 'user.origin': 'base' } },
  { type: 'dir', name: 'tmp', mode: 0o1777 },
  { type: 'dir', name: 'dev' },
  { type: 'char', name: 'dev/null', major: 1, minor: 3, mode: 0o666 },
  { type: 'block', name: 'dev/loop0', major: 7, minor: 0, mode: 0o660, gid: 6 },
  { type: 'fifo', name: 'dev/initctl', mode: 0o600 },
  { type: 'dir', name: 'etc' },
  { type: 'file', name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
  { type: 'file', name: 'etc/to-delete', content: 'bye' },
  { type: 'dir', name: 'etc/dir-to-delete' },
  { type: 'file', name: 'etc/dir-to-delete/inner', content: 'bye too' },
  { type: 'dir', name: 'var' },
  { type: 'dir', name: 'var/cache', mode: 0o750, uid: 33, gid: 33 },
  { type: 'file', name: 'var/cache/old1', content: 'o1' },
  { type: 'dir', name: 'var/cache/olddir' },
  { type: 'file', name: 'var/cache/olddir/o2', content: 'o2' },
  { type: 'file', name: 'becomes-dir', content: 'file now' },
  { type: 'dir', name: 'becomes-file' },
  { type: 'file', name: 'becomes-file/child', content: 'c' },
  { type: 'dir', name: 'opt' },
  { type: 'dir', name: 'opt/app', mode: 0o750, uid: 1000, gid: 1000 },
  { type: 'file', name: 'opt/app/a', content: 'a', uid: 1000, gid: 1000 },
  { type: 'dir', name: 'long' },
  { type: 'dir', name: 'long/' + 'a'.repeat(110) },
  { type: 'file', name: LONG, content: 'long pax path' },
  { type: 'file', name: 'long/' + 'a'.repeat(110) + '/' + 'g'.repeat(130), content: 'gnu long path', gnuLongName: true },
  { type: 'file', name: 'big', content: Buffer.alloc(3 << 20, 7) },
  // A hardlink with an owner and mode of its own right after a big file: whose attributes win, containerd says.
  { type: 'link', name: 'big-hard', target: 'big', mode: 0o640, uid: 5, gid: 6 },
];

const changes: LayerEntry[] = [
  { type: 'dir', name: 'bin' },
  { type: 'file', name: 'bin/tool', content: 'tool v2, longer', mode: 0o700, uid: 2, gid: 3 },
  { type: 'dir', name: 'etc' },
  { type: 'whiteout', name: 'etc/to-delete' },
  { type: 'whiteout', name: 'etc/dir-to-delete' },
  { type: 'dir', name: 'var' },
  { type: 'dir', name: 'var/cache', mode: 0o755 },
  { type: 'opaque', name: 'var/cache' },
  { type: 'file', name: 'var/cache/fresh', content: 'new' },
  { type: 'dir', name: 'becomes-dir', mode: 0o711 },
  { type: 'file', name: 'becomes-dir/x', content: 'x' },
  { type: 'file', name: 'becomes-file', content: 'was a dir' },
  { type: 'file', name: 'new-hard-src', content: 'shared', uid: 9 },
  { type: 'link', name: 'new-hard-dst', target: 'new-hard-src' },
  { type: 'file', name: 'bin/ping', content: 'ping2', mode: 0o755, xattrs: { 'user.origin': 'changes', 'trusted.berth': 'x' } },
];

// Parent dirs implied (no entries of their own): their attributes come from the layers below.
const implied: LayerEntry[] = [
  { type: 'file', name: 'opt/app/b', content: 'b' },
  { type: 'file', name: 'new/deep/dir/file', content: 'deep' },
  { type: 'whiteout', name: 'bin/su-hard' },
  { type: 'whiteout', name: 'big' },
  { type: 'file', name: 'etc/to-delete', content: 'back again' },
];

async function kitchenSink(platform = 'linux/amd64'): Promise<BuiltImage> {
  return buildImage({
    platform,
    layers: [
      { tar: await makeLayerTar(base), compression: 'gzip' },
      { tar: await makeLayerTar(changes), compression: 'zstd' },
      { tar: await makeLayerTar(implied), compression: 'none' },
    ],
  });
}

// ------------------------------------------------------------------------------------- the trees

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  link?: string;
  rdev?: number;
  sha?: string;
  xattrs: Record<string, string>;
}

function xattrDump(dir: string): Map<string, Record<string, string>> {
  const out = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const res = new Map<string, Record<string, string>>();
  let cur = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = line.slice(8).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      res.set(cur, {});
    } else {
      const m = /^([^=]+)=(.*)$/.exec(line);
      if (m && cur) res.get(cur)![m[1]!] = m[2]!;
    }
  }
  return res;
}

function tree(dir: string): Record<string, Node> {
  const xs = xattrDump(dir);
  const out: Record<string, Node> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(`${dir}/${rel}`).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = `${dir}/${r}`;
      const st = lstatSync(p);
      const n: Node = { type: '', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs: xs.get(p) ?? {} };
      if (st.isDirectory()) n.type = 'dir';
      else if (st.isSymbolicLink()) {
        n.type = 'symlink';
        n.link = readlinkSync(p);
        n.mode = 0;
      } else if (st.isFile()) {
        n.type = 'file';
        n.size = st.size;
        n.sha = createHash('sha256').update(readFileSync(p)).digest('hex');
      } else if (st.isFIFO()) n.type = 'fifo';
      else if (st.isCharacterDevice()) {
        n.type = 'char';
        n.rdev = st.rdev;
      } else if (st.isBlockDevice()) {
        n.type = 'block';
        n.rdev = st.rdev;
      } else n.type = 'other';
      out[r] = n;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** Hardlink groups (paths sharing an inode), which must match too. */
function linkGroups(dir: string, t: Record<string, Node>): string[] {
  const byIno = new Map<number, string[]>();
  for (const [p, n] of Object.entries(t)) {
    if (n.type !== 'file') continue;
    const ino = lstatSync(`${dir}/${p}`).ino;
    byIno.set(ino, [...(byIno.get(ino) ?? []), p]);
  }
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort().join('='));
}

// --------------------------------------------------------------------------------------- helpers

let seq = 0;
async function containerdTree(img: BuiltImage, opts: { platform?: string } = {}): Promise<{ t: Record<string, Node>; links: string[] }> {
  const name = `eq${seq++}`;
  const archive = `${tmp}/${name}.tar`;
  await writeOciArchive(archive, img, 'latest');
  await ctr('images', 'import', '--base-name', `test/${name}`, ...(opts.platform ? ['--platform', opts.platform] : []), '--snapshotter', 'overlayfs', archive);
  const target = `${tmp}/ctr-${name}`;
  mkdirSync(target);
  await ctr('images', 'mount', '--snapshotter', 'overlayfs', ...(opts.platform ? ['--platform', opts.platform] : []), `test/${name}:latest`, target);
  mounted.push(target);
  const t = tree(target);
  const links = linkGroups(target, t);
  await ctr('images', 'unmount', target);
  mounted.splice(mounted.indexOf(target), 1);
  return { t, links };
}

async function berthTree(
  img: BuiltImage,
  sn: Snapshotter,
  parallelism: number,
  workers = false,
  apply: Exclude<ApplyPath, 'auto'> = 'js',
): Promise<{ t: Record<string, Node>; links: string[]; chain: string[] }> {
  const blobDir = `${tmp}/blobs`;
  if (workers) {
    mkdirSync(blobDir, { recursive: true });
    for (const l of img.layers!) writeFileSync(`${blobDir}/${l.digest.slice(7)}`, img.blobs.get(l.digest)!);
  }
  const chain = await unpackImage({
    layers: img.layers!,
    diffIds: img.diffIds!,
    snapshotter: sn,
    signal: AbortSignal.timeout(60_000),
    parallelism,
    // 'native' fails here, loudly, if the helper cannot be built: never a silent JavaScript run.
    applier: await selectLayerApplier(apply, `${tmp}/lib`),
    open: async (d) => Readable.from([img.blobs.get(d.digest)!]),
    openSource: workers ? async (d) => ({ kind: 'file', path: `${blobDir}/${d.digest.slice(7)}` }) : undefined,
    workerMinBytes: 0,
  });
  const key = `view-${seq++}`;
  const target = `${tmp}/berth-${key}`;
  mkdirSync(target);
  await mountAll(await sn.view(key, chain.at(-1)), target);
  mounted.push(target);
  const t = tree(target);
  const links = linkGroups(target, t);
  await unmount(target);
  mounted.splice(mounted.indexOf(target), 1);
  await sn.remove(key);
  return { t, links, chain };
}

// ----------------------------------------------------------------------------------------- tests

describe('unpack equivalence with containerd (ctr images mount)', () => {
  let oracle: { t: Record<string, Node>; links: string[] };
  let img: BuiltImage;
  beforeAll(async () => {
    img = await kitchenSink();
    oracle = await containerdTree(img);
  }, 60_000);

  it('the oracle tree holds what the layers say (sanity check of the fixture)', () => {
    expect(oracle.t['etc/to-delete']?.sha).toBe(createHash('sha256').update('back again').digest('hex'));
    expect(oracle.t['etc/dir-to-delete']).toBeUndefined();
    expect(oracle.t['var/cache/old1']).toBeUndefined();
    expect(oracle.t['var/cache/fresh']?.type).toBe('file');
    expect(oracle.t['becomes-dir']?.type).toBe('dir');
    expect(oracle.t['becomes-file']?.type).toBe('file');
    expect(oracle.t['dev/null']?.type).toBe('char');
    expect(oracle.t['bin/ping']?.xattrs['user.origin']).toBe('0x' + Buffer.from('changes').toString('hex'));
    expect(oracle.t[LONG]?.type).toBe('file');
    expect(oracle.links).toContain('new-hard-dst=new-hard-src');
  });

  for (const [snName, parallelism, workers, apply] of [
    ['overlayfs', 1, false, 'js'],
    ['overlayfs', 3, false, 'js'],
    ['overlayfs', 2, true, 'js'],
    ['native', 1, false, 'js'],
    ['native', 1, true, 'js'],
    ['overlayfs', 1, false, 'native'],
    ['overlayfs', 8, false, 'native'],
    ['native', 1, false, 'native'],
  ] as const) {
    it(`berth ${snName} (${apply} apply, parallelism ${parallelism}${workers ? ', worker threads' : ''}) mounts the same tree as containerd`, async () => {
      const sn = await openSnapshotter(`${tmp}/berth-${snName}-${parallelism}-${workers}-${apply}`, snName);
      try {
        const mine = await berthTree(img, sn, parallelism, workers, apply);
        expect(mine.chain.length).toBe(3);
        expect(mine.t).toEqual(oracle.t);
        expect(mine.links.sort()).toEqual(oracle.links.sort());
        // Unpacking again is a no-op: every chain ID exists.
        const again = await berthTree(img, sn, parallelism);
        expect(again.chain).toEqual(mine.chain);
        let n = 0;
        for await (const s of sn.walk()) if (s.kind === 'committed') n++;
        expect(n).toBe(3);
      } finally {
        await sn.close();
      }
    });
  }

  it.each(['js', 'native'] as const)('parallel unpack keeps whiteouts of later layers (containerd #13030; %s apply)', async (apply) => {
    const layers = [
      {
        tar: await makeLayerTar([
          { type: 'dir', name: 'd' },
          { type: 'file', name: 'd/a', content: 'a' },
          { type: 'file', name: 'd/b', content: 'b' },
          { type: 'file', name: 'top', content: 't' },
        ]),
        compression: 'gzip' as const,
      },
      {
        tar: await makeLayerTar([
          { type: 'dir', name: 'd' },
          { type: 'whiteout', name: 'd/a' },
        ]),
        compression: 'gzip' as const,
      },
      {
        tar: await makeLayerTar([
          { type: 'whiteout', name: 'top' },
          { type: 'dir', name: 'd' },
          { type: 'opaque', name: 'd' },
          { type: 'file', name: 'd/c', content: 'c' },
        ]),
        compression: 'zstd' as const,
      },
    ];
    const wimg = await buildImage({ layers });
    const want = await containerdTree(wimg);
    expect(Object.keys(want.t).sort()).toEqual(['d', 'd/c']);
    const sn = await openSnapshotter(`${tmp}/berth-wh-${apply}`, 'overlayfs');
    try {
      const mine = await berthTree(wimg, sn, 3, false, apply);
      expect(mine.t).toEqual(want.t);
    } finally {
      await sn.close();
    }
  });

  it('multi-platform: the host platform of an index unpacks to what containerd shows', async () => {
    const amd = await kitchenSink('linux/amd64');
    const arm = await buildImage({
      platform: 'linux/arm64',
      layers: [{ tar: await makeLayerTar([{ type: 'file', name: 'arm-only', content: 'arm' }]), compression: 'gzip' }],
    });
    const index = buildIndex([amd, arm]);
    const want = await containerdTree(index, { platform: 'linux/amd64' });
    expect(want.t['arm-only']).toBeUndefined();
    const sn = await openSnapshotter(`${tmp}/berth-multi`, 'overlayfs');
    try {
      const mine = await berthTree(amd, sn, 2);
      expect(mine.t).toEqual(want.t);
    } finally {
      await sn.close();
    }
  });
});
