/**
 * What the overlayfs and native snapshotters share: containerd's layout
 * (`<root>/snapshots/<id>`, `<root>/metadata.db`), crash-safe creation and removal, usage, walk
 * and start-up recovery. Subclasses say how a new snapshot's directory is built and mounted.
 *
 * Crash safety, step by step:
 *  - prepare/view: the directory is built under `snapshots/new-<random>`; then, in one SQLite
 *    transaction, the record is inserted, the directory renamed to `snapshots/<id>` and the
 *    `snapshots/` directory fsynced before COMMIT. A crash leaves either a `new-*` directory or a
 *    numbered directory without a record: both are removed by `recover()`.
 *  - commit: only metadata changes (the directory stays where it is).
 *  - remove: in one transaction the record is deleted and the directory renamed to `rm-<id>-…`
 *    (fsynced); the tree is deleted afterwards, and `recover()` finishes any `rm-*` left.
 */
import { formatOwner, ownerTextAlive, selfIdentity } from '../owner-identity.ts';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, lstatSync } from 'node:fs';
import { fsyncDirSync, isMissing } from '../durable-file.ts';
import { mkdir, rm } from 'node:fs/promises';
import { BerthError, failedPrecondition, notFound } from '../errors.ts';
import type { CommitOptions, Mount, SnapshotInfo, SnapshotKind, SnapshotOptions, Snapshotter, Usage } from './snapshotter.ts';
import { OWNER_LABEL, ownedByLiveProcess } from './snapshot-owner.ts';
import { SnapshotStore, type SnapshotRow } from './store.ts';
import { pathExists } from '../path-exists.ts';

/** A `snapshots/new-<owner>-<random>` directory whose owner is alive: a build in progress. */
function buildingByLiveProcess(name: string): boolean {
  const m = /^new-(\d+-\d+-[0-9a-f]{32})-[0-9a-f]+$/.exec(name);
  return m !== null && ownerTextAlive(m[1]);
}

export abstract class DirSnapshotter implements Snapshotter {
  abstract readonly name: string;
  abstract readonly layerFormat: 'overlay' | 'native';
  readonly root: string;
  protected readonly store: SnapshotStore;
  protected readonly snapshotsDir: string;

  constructor(root: string) {
    this.root = root;
    this.snapshotsDir = `${root}/snapshots`;
    mkdirSync(this.snapshotsDir, { recursive: true, mode: 0o700 });
    this.store = new SnapshotStore(`${root}/metadata.db`);
  }

  /** Build the directory of a new snapshot at `dir` (which does not exist yet). */
  protected abstract build(dir: string, kind: SnapshotKind, parentIds: number[], signal?: AbortSignal): Promise<void>;
  /** The mounts of a snapshot whose ancestors are `parentIds` (nearest first). */
  protected abstract mountsOf(row: SnapshotRow, parentIds: number[]): Mount[];
  /** The directory tree a snapshot owns (for usage): `<id>/fs` or `<id>`. */
  abstract treeDir(id: number | string): string;

  protected dirOf(id: number | string): string {
    return `${this.snapshotsDir}/${id}`;
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return publicInfo(this.store.mustGet(key));
  }

  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('active', key, parent, opts);
  }

  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('view', key, parent, opts);
  }

  private async create(kind: SnapshotKind, key: string, parent: string | undefined, opts: SnapshotOptions = {}): Promise<Mount[]> {
    opts.signal?.throwIfAborted();
    // Checked before the (possibly long) build, and again inside the transaction.
    if (this.store.get(key)) throw new BerthError('AlreadyExists', `snapshot ${key} already exists`);
    const parentIds = parent === undefined ? [] : this.store.parentIds(parent);
    if (parent !== undefined && this.store.mustGet(parent).kind !== 'committed') {
      throw failedPrecondition(`parent snapshot ${parent} is not committed`);
    }
    // The owner in the name tells another process's recover() that this build is still going on.
    const tmp = `${this.snapshotsDir}/new-${formatOwner(selfIdentity())}-${randomBytes(6).toString('hex')}`;
    try {
      await this.build(tmp, kind, parentIds, opts.signal);
      opts.signal?.throwIfAborted();
      this.store.transaction(() => {
        const id = this.store.insert(key, parent, kind, opts.labels ?? {});
        const dir = this.dirOf(id);
        // An id can only be taken by a directory that lost its record in a crash: it is garbage.
        rmSync(dir, { recursive: true, force: true });
        renameSync(tmp, dir);
        fsyncDirSync(this.snapshotsDir);
      });
      return this.mountsOf(this.store.mustGet(key), parentIds);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }

  onDisk(info: SnapshotInfo): Promise<boolean> {
    return pathExists(this.dirOf(info.id));
  }

  async mounts(key: string): Promise<Mount[]> {
    const row = this.store.mustGet(key);
    return this.mountsOf(row, this.store.parentIds(row.parent));
  }

  async peekMounts(parent: string): Promise<Mount[]> {
    const ids = this.store.parentIds(parent);
    // Native directories hold whole trees, so the top one is the image; overlay stacks the layers.
    if (this.layerFormat === 'native' || ids.length === 1) return [{ type: 'bind', source: this.treeDir(ids[0]!), options: ['ro', 'rbind'] }];
    return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${ids.map((id) => this.treeDir(id)).join(':')}`] }];
  }

  async commit(name: string, key: string, opts: CommitOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    const row = this.store.mustGet(key);
    if (opts.parent !== undefined && this.layerFormat !== 'overlay') {
      throw failedPrecondition(`${this.name} snapshotter cannot re-parent ${key} on commit: its directories hold whole trees`);
    }
    const usage = opts.usage ?? (await diskUsage(this.treeDir(row.idNum)));
    const labels = { ...row.labels, ...opts.labels };
    delete labels[OWNER_LABEL]; // a committed snapshot belongs to no process
    this.store.transaction(() => this.store.commit(name, key, usage, labels, opts.parent));
  }

  async remove(key: string): Promise<void> {
    const row = this.store.mustGet(key);
    const doomed = `${this.snapshotsDir}/rm-${row.idNum}-${randomBytes(4).toString('hex')}`;
    this.store.transaction(() => {
      const children = this.store.children(key);
      if (children.length) throw failedPrecondition(`snapshot ${key} has children: ${children.join(', ')}`);
      this.store.delete(key);
      try {
        renameSync(this.dirOf(row.idNum), doomed);
      } catch (err) {
        if (!isMissing(err)) throw err;
        return;
      }
      fsyncDirSync(this.snapshotsDir);
    });
    // The snapshot is gone once the transaction committed; a failure here leaves an `rm-*`
    // directory that recover() deletes later.
    await rmTree(doomed).catch(() => {});
  }

  async *walk(): AsyncIterable<SnapshotInfo> {
    for (const r of this.store.all()) yield publicInfo(r);
  }

  async usage(key: string): Promise<Usage> {
    const row = this.store.mustGet(key);
    if (row.kind === 'committed' && row.size !== undefined) return { size: row.size, inodes: row.inodes ?? 0 };
    return diskUsage(this.treeDir(row.idNum));
  }

  async recover(signal?: AbortSignal): Promise<void> {
    // 1. Active snapshots owned by a process that is gone (a crashed unpack, or one from before
    //    a reboot whose pid is now another process's) are removed.
    for (const r of this.store.all()) {
      if (r.kind === 'active' && OWNER_LABEL in r.labels && !ownedByLiveProcess(r)) {
        signal?.throwIfAborted();
        await this.removeTree(r.key);
      }
    }
    // 2. Records whose directory vanished (containerd #3369) are dropped with their descendants,
    //    so a later pull unpacks them again instead of mounting nothing.
    for (const r of this.store.all()) {
      if (!exists(this.dirOf(r.idNum)) && this.store.get(r.key)) await this.removeTree(r.key);
    }
    // 3. Half-made (`new-*` of a process that is gone), half-removed (`rm-*`) and unrecorded
    //    directories are deleted. Decided under the write lock: another process's prepare renames
    //    its directory and inserts its record in one transaction, so none is caught half-way.
    const doomed = this.store.transaction(() => {
      const known = new Set(this.store.all().map((r) => String(r.idNum)));
      const out: string[] = [];
      for (const name of readdirSync(this.snapshotsDir)) {
        if (known.has(name)) continue;
        if (buildingByLiveProcess(name)) continue;
        if (name.startsWith('rm-')) {
          out.push(`${this.snapshotsDir}/${name}`);
          continue;
        }
        const to = `${this.snapshotsDir}/rm-${name}-${randomBytes(4).toString('hex')}`;
        renameSync(`${this.snapshotsDir}/${name}`, to);
        out.push(to);
      }
      return out;
    });
    for (const d of doomed) {
      signal?.throwIfAborted();
      await rmTree(d).catch(() => {}); // another recover() may be deleting it too
    }
  }

  /** Remove a snapshot and every snapshot built on it. */
  private async removeTree(key: string): Promise<void> {
    for (const c of this.store.children(key)) await this.removeTree(c);
    if (this.store.get(key)) await this.remove(key);
  }

  async close(): Promise<void> {
    this.store.close();
  }
}

function publicInfo(r: SnapshotRow): SnapshotInfo {
  return { key: r.key, parent: r.parent, kind: r.kind, id: r.id, labels: r.labels, created: r.created, updated: r.updated };
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** rm -rf that also works on a tree holding a read-only directory or a mount left behind. */
export async function rmTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 3 });
  } catch (err: any) {
    throw new BerthError('Internal', `cannot remove ${path}: ${err.message}`, { cause: err, place: { file: path } });
  }
}

/** Bytes (allocated blocks) and inodes under `dir`, hardlinks counted once, as containerd's fs.DiskUsage. */
export async function diskUsage(dir: string): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  let inodes = 0;
  // Synchronous: thousands of lstat calls are far cheaper without a thread-pool hop each.
  const walk = (p: string): void => {
    const st = lstatSync(p);
    const k = `${st.dev}:${st.ino}`;
    if (!seen.has(k)) {
      seen.add(k);
      inodes++;
      size += st.blocks * 512;
    }
    if (st.isDirectory()) {
      for (const n of readdirSync(p)) walk(`${p}/${n}`);
    }
  };
  try {
    walk(dir);
  } catch (err: any) {
    if (err?.code === 'ENOENT') throw notFound(`snapshot directory ${dir} is missing`, { cause: err });
    throw err;
  }
  return { size, inodes };
}

export async function mkdirs(...dirs: string[]): Promise<void> {
  for (const d of dirs) await mkdir(d, { recursive: true, mode: 0o755 });
}
