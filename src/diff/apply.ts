/**
 * Apply one layer (a possibly compressed tar stream) into a directory, as containerd's
 * pkg/archive does: names confined to the root, symlinks followed only inside it, existing
 * non-directories replaced, ownership, modes (setuid/setgid/sticky included), mtimes, xattrs,
 * hardlinks, FIFOs and devices; whiteouts either in overlay form (0:0 character devices and
 * `trusted.overlay.opaque=y`, for an overlay upper dir) or as deletions (native snapshots, where
 * the directory already holds a copy of the parent).
 *
 * The uncompressed stream is hashed as it is applied and must equal the expected diff_id; the
 * caller discards the snapshot on any error. Nothing is committed here.
 *
 * Speed: fs calls are synchronous inside the entry loop (one thread-pool round trip per syscall
 * costs more than the syscall); decompression runs on the thread pool with 1 MiB chunks, so it
 * overlaps the loop. mknod and setxattr, which Node lacks, are batched into one child each.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as C,
  fchmodSync,
  fchownSync,
  futimesSync,
  chmodSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, corrupt } from '../errors.ts';
import { GcPacer } from '../gc-pacer.ts';
import { cleanName, lstatOrUndefined, rootPath } from './confine.ts';
import { LayerBudget, type ApplyLimits } from './limits.ts';
import { layerCompression } from './mediatypes.ts';
import { mknodBatch, setXattrBatch, type NodeOp, type XattrOp } from './syscalls.ts';
import { createExtract, xattrsOf } from './tar.ts';

export type WhiteoutMode = 'overlay' | 'native';

export interface ApplyOptions {
  /** The directory to apply into: an overlay upper dir, or a native snapshot's full tree. */
  root: string;
  mediaType: string;
  /** `overlay`: write whiteouts as overlayfs expects; `native`: perform the deletions. */
  whiteouts: WhiteoutMode;
  /** Overlay only: the parent layers' dirs, nearest first, to copy attributes of implied parent dirs. */
  parents?: string[];
  /** The config's `rootfs.diff_ids[i]`; a mismatch is a Corrupt error naming the layer. */
  expectedDiffId?: string;
  /** The layer's (compressed) digest, for messages. */
  layerDigest?: string;
  /** syncfs the filesystem after applying, so a commit never points at unwritten data (containerd #5854). */
  sync?: boolean;
  signal?: AbortSignal;
  /** Uncompressed bytes between minor GCs (default 8 MiB; 0 disables). */
  gcEveryBytes?: number;
  /** Called with diagnostics that do not fail the layer (e.g. unsupported xattrs). */
  warn?: (msg: string) => void;
  /** Bounds on bytes, entries, header sizes and free space (defaults: DEFAULT_APPLY_LIMITS). */
  limits?: Partial<ApplyLimits>;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** Bytes of the uncompressed stream. */
  size: number;
  entries: number;
  /** Directories created because an entry implied them (no header of their own), relative to root. */
  impliedDirs: string[];
  /**
   * The root's disk usage once applied, measured as the snapshotter does (512-byte blocks, inodes,
   * each hardlinked inode once), when the applier measured it: the commit then skips its own walk.
   */
  usage?: { size: number; inodes: number };
}

const WH_PREFIX = '.wh.';
const WH_META_PREFIX = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';
const CHUNK = 1 << 20;
/** How long a failed apply waits for its entry loop to stop writing. */
const LOOP_SETTLE_MS = 5_000;
const MAX_PENDING_NODES = 4096;

function decompressor(mediaType: string, digest: string): Transform | undefined {
  switch (layerCompression(mediaType, digest)) {
    case 'gzip':
      return createGunzip({ chunkSize: CHUNK });
    case 'zstd':
      return createZstdDecompress({ chunkSize: CHUNK });
    case 'none':
      return undefined;
  }
}

/** Apply a layer stream into `opts.root`. */
export async function applyLayer(source: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const layer = opts.layerDigest ?? '(layer)';
  const dec = decompressor(opts.mediaType, layer);
  const hash = createHash('sha256');
  let size = 0;
  // Decompressed 1 MiB chunks die young but V8 barely sees them (they live outside its heap):
  // a minor GC every few MiB keeps peak RSS flat (see src/gc-pacer.ts).
  const pacer = new GcPacer(opts.gcEveryBytes ?? 8 << 20);
  const budget = new LayerBudget(opts.root, layer, opts.limits);
  const tap = new Transform({
    highWaterMark: CHUNK,
    transform(chunk: Buffer, _enc, cb) {
      try {
        budget.addBytes(chunk.length);
      } catch (err) {
        return cb(err as Error);
      }
      hash.update(chunk);
      size += chunk.length;
      pacer.account(chunk.length);
      cb(null, chunk);
    },
  });
  const extract: any = createExtract((bytes, type) => budget.checkHeader(bytes, type));
  const applier = new Applier(opts, budget);

  // source → [decompress] → hash tap → tar parser; any stream error rejects `failed`.
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  const onErr = (err: unknown) => fail(err);
  source.on('error', onErr);
  tap.on('error', onErr);
  let upstream: Readable = source;
  if (dec) {
    dec.on('error', (err) => fail(corrupt(`layer ${layer}: cannot decompress: ${err.message}`, { cause: err })));
    upstream = source.pipe(dec);
  }
  upstream.pipe(tap);
  // tar-stream is a streamx Writable: feed it by hand, honouring its backpressure.
  const tapDone = new Promise<void>((resolve) => tap.on('end', resolve));
  tap.on('data', (chunk: Buffer) => {
    if (extract.write(chunk) === false) {
      tap.pause();
      extract.once('drain', () => tap.resume());
    }
  });
  tap.on('end', () => extract.end());
  const onAbort = () => {
    const reason = opts.signal?.reason ?? new BerthError('Aborted', 'aborted');
    fail(reason);
    source.destroy();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  let loop: Promise<void> | undefined;
  try {
    opts.signal?.throwIfAborted();
    loop = (async () => {
      for await (const entry of extract) {
        opts.signal?.throwIfAborted();
        await applier.entry(entry.header, entry);
      }
    })();
    loop.catch(() => {}); // when a stream error wins the race, the loop's own rejection is moot
    await Promise.race([loop, failed]);
    await Promise.race([tapDone, failed]);
    await applier.finish();
  } catch (err) {
    source.destroy();
    extract.destroy?.();
    // Let the entry loop see the end of its stream and close the file it writes before the caller
    // removes the snapshot: an fd still open (on a worker thread that is then terminated, for
    // good) would keep the removed file's space in use.
    const settle = new AbortController();
    await Promise.race([loop?.catch(() => {}), sleep(LOOP_SETTLE_MS, undefined, { signal: settle.signal }).catch(() => {})]);
    settle.abort();
    if (err instanceof BerthError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e?.name === 'AbortError') throw new BerthError('Aborted', `layer ${layer}: aborted`, { cause: err });
    throw new BerthError(e?.code === 'ENOSPC' ? 'ResourceExhausted' : 'Internal', `layer ${layer}: apply failed: ${e?.message ?? String(err)}`, {
      cause: err,
      place: e?.path ? { file: e.path } : undefined,
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  const diffId = `sha256:${hash.digest('hex')}`;
  if (opts.expectedDiffId && diffId !== opts.expectedDiffId) {
    throw corrupt(`layer ${layer}: wrong diff id: expected ${opts.expectedDiffId}, got ${diffId}`);
  }
  if (opts.sync) await syncfs(opts.root, opts.signal);
  return { diffId, size, entries: applier.count, impliedDirs: applier.impliedDirs };
}

/** syncfs(2) on the filesystem holding `dir` (coreutils `sync -f`). */
export function syncfs(dir: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', ['-f', dir], { stdio: 'ignore', signal });
    child.on('error', (err) => reject(new BerthError('Internal', `sync -f ${dir}: ${err.message}`, { cause: err, place: { file: dir } })));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new BerthError('Internal', `sync -f ${dir} exited ${code}`, { place: { file: dir } }))));
  });
}

interface Header {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
}

/** The per-layer state: caches, deferred work. One instance per applyLayer call. */
class Applier {
  readonly root: string;
  readonly opts: ApplyOptions;
  count = 0;
  readonly impliedDirs: string[] = [];
  /** Root-relative dir → resolved absolute path, for dirs known to exist as real directories. */
  private dirs = new Map<string, string>();
  /** Directory mtimes, set last: creating entries inside a directory changes its mtime. */
  private dirTimes: Array<[string, Date]> = [];
  private nodes = new Map<string, { op: NodeOp; uid: number; gid: number; mtime?: Date }>();
  private xattrs = new Map<string, XattrOp[]>();
  /** Native mode: every path this layer wrote, so an opaque dir keeps them. */
  private unpacked = new Set<string>();
  private readonly budget: LayerBudget;
  /** Whether anything was removed: only then can a directory's parent have become a symlink. */
  private removedAny = false;

  constructor(opts: ApplyOptions, budget: LayerBudget) {
    this.opts = opts;
    this.budget = budget;
    this.root = opts.root.replace(/\/+$/, '');
  }

  async entry(h: Header, stream: AsyncIterable<Buffer>): Promise<void> {
    this.count++;
    this.budget.addEntry(h.name);
    const rel = cleanName(h.name);
    if (h.pax) {
      if (h.pax.uid) h.uid = parseInt(h.pax.uid, 10);
      if (h.pax.gid) h.gid = parseInt(h.pax.gid, 10);
      if (h.pax.mtime) h.mtime = new Date(parseFloat(h.pax.mtime) * 1000);
    }
    // Skip the root itself and AUFS metadata (`/.wh..wh.plnk`, …), as containerd does.
    if (rel === '' || (rel.startsWith(WH_META_PREFIX) && rel !== WH_OPAQUE)) return drain(stream);
    const slash = rel.lastIndexOf('/');
    const dirRel = slash < 0 ? '' : rel.slice(0, slash);
    const base = slash < 0 ? rel : rel.slice(slash + 1);
    const parent = this.parentDir(dirRel);

    if (base.startsWith(WH_PREFIX)) {
      await drain(stream);
      return this.whiteout(parent, base, h);
    }
    const path = parent + '/' + base;
    if (this.opts.whiteouts === 'native') this.unpacked.add(path);
    this.forgetPending(path);

    switch (h.type) {
      case 'file':
      case 'contiguous-file': {
        const fd = this.create(path, () => openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600));
        try {
          for await (const chunk of stream) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
          }
          fchownSync(fd, h.uid, h.gid);
          fchmodSync(fd, h.mode & 0o7777);
          futimesSync(fd, h.mtime, h.mtime);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'directory': {
        const st = lstatOrUndefined(path);
        if (!st?.isDirectory()) {
          if (st) this.removeAll(path);
          mkdirSync(path, 0o700);
        }
        lchownSync(path, h.uid, h.gid);
        chmodSync(path, h.mode & 0o7777);
        this.dirs.set(rel, path);
        this.dirTimes.push([path, h.mtime]);
        await drain(stream);
        break;
      }
      case 'symlink':
        this.create(path, () => symlinkSync(h.linkname ?? '', path));
        lchownSync(path, h.uid, h.gid);
        lutimesSync(path, h.mtime, h.mtime);
        await drain(stream);
        break;
      case 'link': {
        const target = this.hardlinkTarget(h.linkname ?? '');
        if (this.nodes.has(target)) await this.flushNodes();
        this.create(path, () => linkSync(target, path));
        if (this.xattrs.has(target))
          this.xattrs.set(
            path,
            this.xattrs.get(target)!.map((x) => ({ ...x, path })),
          );
        lchownSync(path, h.uid, h.gid);
        const st = lstatOrUndefined(path)!;
        if (!st.isSymbolicLink()) {
          chmodSync(path, h.mode & 0o7777);
          lutimesSync(path, h.mtime, h.mtime);
        }
        await drain(stream);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        const st = lstatOrUndefined(path);
        if (st) this.removeAll(path);
        const kind = h.type === 'fifo' ? 'p' : h.type === 'character-device' ? 'c' : 'b';
        this.nodes.set(path, { op: { path, kind, major: h.devmajor, minor: h.devminor, mode: h.mode }, uid: h.uid, gid: h.gid, mtime: h.mtime });
        await drain(stream);
        break;
      }
      default:
        // Sockets and unknown types are not extracted (containerd skips them too).
        this.opts.warn?.(`layer ${this.opts.layerDigest ?? ''}: skipping ${h.name}: unsupported entry type ${h.type}`);
        await drain(stream);
        return;
    }
    const xs = xattrsOf(h.pax).filter(([name]) => {
      // Admin attributes are refused, as containerd does: `trusted.overlay.*` from a layer could
      // forge whiteouts, opaque dirs or redirects in the overlay below.
      if (!name.startsWith('trusted.')) return true;
      this.opts.warn?.(`layer ${this.opts.layerDigest ?? ''}: ignored xattr ${name} on ${h.name}: admin attributes from archives are not supported`);
      return false;
    });
    if (xs.length) {
      // Held until the end of the layer (a later chown would clear security.capability), so bounded.
      this.budget.hold(xs.reduce((n, [name, value]) => n + name.length + value.length, 0));
      this.xattrs.set(
        path,
        xs.map(([name, value]) => ({ path, name, value })),
      );
    }
    // Device nodes wait for one batched mknod; a layer of a million FIFOs must not wait in memory.
    if (this.nodes.size >= MAX_PENDING_NODES) await this.flushNodes();
  }

  /** Run `make`; if the path exists, remove what is there and make again (dirs are merged elsewhere). */
  private create<T>(path: string, make: () => T): T {
    try {
      return make();
    } catch (err: any) {
      if (err?.code !== 'EEXIST') throw err;
    }
    this.removeAll(path);
    return make();
  }

  /** The parent directory for an entry, resolved inside the root and created if missing. */
  private parentDir(dirRel: string): string {
    const cached = this.dirs.get(dirRel);
    if (cached !== undefined) return cached;
    const abs = rootPath(this.root, dirRel);
    this.mkparent(abs);
    this.dirs.set(dirRel, abs);
    return abs;
  }

  /**
   * Make `abs` (inside the root) a directory, creating missing ancestors; a new directory takes
   * its attributes from the nearest parent layer that has one there (containerd's mkparent).
   */
  private mkparent(abs: string): void {
    if (abs === this.root) return;
    const st = lstatOrUndefined(abs);
    if (st) {
      if (st.isDirectory()) return;
      throw new BerthError('FailedPrecondition', `layer ${this.opts.layerDigest ?? ''}: ${abs} is not a directory`, {
        place: { file: abs },
      });
    }
    this.mkparent(posix.dirname(abs));
    mkdirSync(abs, 0o755);
    const rel = abs.slice(this.root.length + 1);
    this.impliedDirs.push(rel);
    copyDirInfoFromParents(abs, rel, this.opts.parents ?? []);
  }

  /** containerd's hardlinkRootPath: the link target's parent resolved inside the root. */
  private hardlinkTarget(linkname: string): string {
    const rel = cleanName(linkname);
    if (rel === '') return this.root;
    const slash = rel.lastIndexOf('/');
    const dir = rootPath(this.root, slash < 0 ? '' : rel.slice(0, slash));
    return dir + '/' + rel.slice(slash + 1);
  }

  private async whiteout(parent: string, base: string, h: Header): Promise<void> {
    const overlay = this.opts.whiteouts === 'overlay';
    if (base === WH_OPAQUE) {
      if (overlay) {
        this.mkparent(parent);
        this.xattrs.set(parent + '\0opaque', [{ path: parent, name: 'trusted.overlay.opaque', value: Buffer.from('y') }]);
      } else if (lstatOrUndefined(parent)) {
        this.removeNotUnpacked(parent);
      }
      return;
    }
    // `.wh.`, `.wh..` and `.wh...` would name the parent itself or the directory above the
    // root (a removal there destroys sibling snapshots); containerd refuses them too.
    const hidden = base.slice(WH_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..') {
      throw new BerthError('InvalidArgument', `layer ${this.opts.layerDigest ?? ''}: invalid whiteout name ${JSON.stringify(h.name)}`, {
        place: { file: h.name },
      });
    }
    const target = parent + '/' + hidden;
    if (overlay) {
      this.mkparent(parent);
      if (lstatOrUndefined(target)) this.removeAll(target);
      this.forgetPending(target);
      this.nodes.set(target, { op: { path: target, kind: 'c', major: 0, minor: 0, mode: 0 }, uid: h.uid, gid: h.gid });
    } else {
      this.removeAll(target);
    }
  }

  /** Native opaque dir: remove everything under `dir` that this layer did not write. */
  private removeNotUnpacked(dir: string): void {
    for (const name of readdirSync(dir)) {
      const p = dir + '/' + name;
      if (!this.unpacked.has(p)) {
        this.removeAll(p);
        continue;
      }
      const st = lstatOrUndefined(p);
      if (st?.isDirectory()) this.removeNotUnpacked(p);
    }
  }

  private removeAll(path: string): void {
    this.assertStrictlyInside(path);
    this.removedAny = true;
    rmSync(path, { recursive: true, force: true });
    this.dirs.clear(); // a removed dir (or a dir replaced by a symlink) must be resolved afresh
    this.forgetPending(path, true);
  }

  /**
   * The last line of defence for every removal: the path must lie strictly below the root, with
   * no `.` or `..` component, so one name check missed elsewhere cannot reach outside the layer.
   */
  private assertStrictlyInside(path: string): void {
    const rel = path.startsWith(this.root + '/') ? path.slice(this.root.length + 1) : '';
    if (rel === '' || rel.split('/').some((c) => c === '' || c === '.' || c === '..')) {
      throw new BerthError('InvalidArgument', `layer ${this.opts.layerDigest ?? ''}: refusing to remove ${path}: not strictly inside ${this.root}`, {
        place: { file: path },
      });
    }
  }

  /** Drop deferred mknod/xattr work for a path (and below it) that is being replaced. */
  private forgetPending(path: string, subtree = false): void {
    if (this.nodes.size === 0 && this.xattrs.size === 0) return;
    this.nodes.delete(path);
    this.xattrs.delete(path);
    if (!subtree) return;
    const prefix = path + '/';
    for (const k of this.nodes.keys()) if (k.startsWith(prefix)) this.nodes.delete(k);
    for (const k of this.xattrs.keys()) if (k.startsWith(prefix) || k === path + '\0opaque') this.xattrs.delete(k);
  }

  private async flushNodes(): Promise<void> {
    if (this.nodes.size === 0) return;
    const nodes = [...this.nodes.values()];
    this.nodes.clear();
    await mknodBatch(
      nodes.map((n) => n.op),
      this.opts.signal,
    );
    for (const n of nodes) {
      lchownSync(n.op.path, n.uid, n.gid);
      if (n.op.mode & 0o7000) chmodSync(n.op.path, n.op.mode & 0o7777); // chown cleared them
      if (n.mtime) lutimesSync(n.op.path, n.mtime, n.mtime);
    }
  }

  async finish(): Promise<void> {
    await this.flushNodes();
    const ops = [...this.xattrs.values()].flat();
    if (ops.length) {
      const failures = await setXattrBatch(ops, this.opts.signal);
      if (failures) this.opts.warn?.(`layer ${this.opts.layerDigest ?? ''}: some xattrs were not set: ${failures}`);
    }
    for (const [path, mtime] of this.dirTimes) {
      const isDir = this.removedAny ? this.stillResolvesTo(path) : lstatOrUndefined(path)?.isDirectory();
      if (isDir) lutimesSync(path, mtime, mtime);
    }
  }

  /**
   * True if `path`, a directory this layer wrote, is still that directory. A later entry may have
   * replaced one of its parents with a symlink (`a/b/` then `a -> /etc`): the absolute path then
   * leads out of the root, and setting its times would touch the host (found by test/fuzz/layers).
   */
  private stillResolvesTo(path: string): boolean {
    try {
      return rootPath(this.root, path.slice(this.root.length + 1)) === path && lstatOrUndefined(path)?.isDirectory() === true;
    } catch (err) {
      if (err instanceof BerthError) return false; // a symlink loop where the directory was
      throw err;
    }
  }
}

/** containerd's copyDirInfo: mode, owner and times of the same dir in the nearest parent layer. */
export function copyDirInfoFromParents(abs: string, rel: string, parents: string[]): boolean {
  for (const p of parents) {
    const pp = rootPath(p, rel);
    const st: Stats | undefined = lstatOrUndefined(pp);
    if (!st) continue;
    if (!st.isDirectory()) return false; // replaced by a non-dir below: keep the defaults
    lchownSync(abs, st.uid, st.gid);
    chmodSync(abs, st.mode & 0o7777);
    lutimesSync(abs, st.atime, st.mtime);
    return true;
  }
  return false;
}

async function drain(stream: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of stream) {
    /* discard */
  }
}
