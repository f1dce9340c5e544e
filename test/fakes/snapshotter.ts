/**
 * A snapshotter for unit tests: its records live in memory, each snapshot's directory is a plain
 * directory under a temporary root (no mounts, no root needed), and its mounts are one bind of that
 * directory, which the unpacker applies layers into. As in the native snapshotter, a new snapshot
 * starts as a copy of its parent's tree, so a container's writable layer holds its image's files.
 * A test can remove a directory behind its back (`loseDirectory`) to make drift.
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { BerthError, failedPrecondition, notFound } from '../../src/errors.ts';
import { pathExists } from '../../src/path-exists.ts';
import type { CommitOptions, Mount, SnapshotInfo, SnapshotKind, SnapshotOptions, Snapshotter, Usage } from '../../src/snapshots/snapshotter.ts';

export class MemorySnapshotter implements Snapshotter {
  readonly name = 'memory';
  readonly layerFormat = 'native' as const;
  readonly root: string;
  private readonly snapshots = new Map<string, SnapshotInfo>();
  private readonly now: () => number;
  private nextId = 1;

  /** `root`: a temporary directory the snapshots' directories go in; `now`: the clock for their times. */
  constructor(root: string, opts: { now?: () => number } = {}) {
    this.root = root;
    this.now = opts.now ?? Date.now;
  }

  private dirOf(info: Pick<SnapshotInfo, 'id'>): string {
    return `${this.root}/${info.id}`;
  }

  private get(key: string): SnapshotInfo {
    const s = this.snapshots.get(key);
    if (!s) throw notFound(`snapshot ${key} not found`);
    return s;
  }

  /** Remove a snapshot's directory and leave its record, as someone with a shell might. */
  loseDirectory(key: string): void {
    rmSync(this.dirOf(this.get(key)), { recursive: true, force: true });
  }

  keys(): string[] {
    return [...this.snapshots.keys()];
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return { ...this.get(key) };
  }

  onDisk(info: SnapshotInfo): Promise<boolean> {
    return pathExists(this.dirOf(info));
  }

  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('active', key, parent, opts);
  }

  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.create('view', key, parent, opts);
  }

  private async create(kind: SnapshotKind, key: string, parent: string | undefined, opts: SnapshotOptions = {}): Promise<Mount[]> {
    opts.signal?.throwIfAborted();
    if (this.snapshots.has(key)) throw new BerthError('AlreadyExists', `snapshot ${key} already exists`);
    if (parent !== undefined && this.get(parent).kind !== 'committed') throw failedPrecondition(`parent snapshot ${parent} is not committed`);
    const now = new Date(this.now());
    const info: SnapshotInfo = { key, parent, kind, id: String(this.nextId++), labels: { ...opts.labels }, created: now, updated: now };
    if (parent === undefined) mkdirSync(this.dirOf(info), { recursive: true });
    else cpSync(this.dirOf(this.get(parent)), this.dirOf(info), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    this.snapshots.set(key, info);
    return this.mounts(key);
  }

  async mounts(key: string): Promise<Mount[]> {
    return [{ type: 'bind', source: this.dirOf(this.get(key)), options: ['rbind', 'rw'] }];
  }

  async peekMounts(parent: string): Promise<Mount[]> {
    return [{ type: 'bind', source: this.dirOf(this.get(parent)), options: ['rbind', 'ro'] }];
  }

  async commit(name: string, key: string, opts: CommitOptions = {}): Promise<void> {
    const s = this.get(key);
    if (s.kind !== 'active') throw failedPrecondition(`snapshot ${key} is not active`);
    if (this.snapshots.has(name)) throw new BerthError('AlreadyExists', `snapshot ${name} already exists`);
    this.snapshots.delete(key);
    this.snapshots.set(name, {
      ...s,
      key: name,
      kind: 'committed',
      parent: opts.parent ?? s.parent,
      labels: { ...s.labels, ...opts.labels },
      updated: new Date(this.now()),
    });
  }

  async remove(key: string): Promise<void> {
    const s = this.get(key);
    if ([...this.snapshots.values()].some((c) => c.parent === key)) throw failedPrecondition(`snapshot ${key} has children`);
    this.snapshots.delete(key);
    rmSync(this.dirOf(s), { recursive: true, force: true });
  }

  async *walk(): AsyncIterable<SnapshotInfo> {
    for (const s of [...this.snapshots.values()]) yield { ...s };
  }

  async usage(key: string): Promise<Usage> {
    this.get(key);
    return { size: 0, inodes: 0 };
  }

  async recover(): Promise<void> {}

  async close(): Promise<void> {}
}
