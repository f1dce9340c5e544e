/**
 * The Snapshotter interface, with containerd's verbs and semantics (core/snapshots/snapshotter.go).
 *
 * A snapshot is a directory tree identified by a `key`. Kinds:
 *  - `active`: writable, made by `prepare(key, parent)`; becomes `committed` by `commit(name, key)`.
 *  - `view`: read-only, made by `view(key, parent)`; never committed.
 *  - `committed`: immutable, may be the parent of other snapshots.
 *
 * Unpacking an image layer by layer (as containerd's unpacker does):
 *   prepare(`extract-<random> <chainID>`, parentChainID) → apply the layer into its mounts →
 *   commit(chainID, extractKey). If `stat(chainID)` already exists the layer is skipped, so images
 *   that share layers share snapshots.
 *
 * Every mutating verb is crash-safe: a snapshot is built under a temporary name and renamed into
 * place, its metadata written atomically; `recover()` at start-up removes half-made ones.
 */
export type SnapshotKind = 'active' | 'view' | 'committed';

export interface SnapshotInfo {
  key: string;
  parent?: string;
  kind: SnapshotKind;
  /** Snapshotter-internal directory id (the `<id>` in `snapshots/<id>`). */
  id: string;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

export interface Usage {
  /** Bytes used by this snapshot's own directory (not its parents). */
  size: number;
  inodes: number;
}

/** A mount in containerd's form: what `mount -t type -o options source target` would do. */
export interface Mount {
  type: 'bind' | 'overlay' | string;
  source: string;
  options: string[];
}

export interface SnapshotOptions {
  labels?: Record<string, string>;
  signal?: AbortSignal;
}

export interface CommitOptions extends SnapshotOptions {
  /**
   * Give a parentless active snapshot a parent as it is committed (parallel unpack: each layer is
   * applied on its own, then committed in order onto the previous chain ID). Only snapshotters
   * whose `layerFormat` is `overlay` accept it, since only there a layer's directory does not
   * contain its parents; others refuse with FailedPrecondition.
   */
  parent?: string;
  /** The active snapshot's usage, measured by whoever just wrote it (the layer applier): no walk. */
  usage?: Usage;
}

export interface Snapshotter {
  /** Name used in paths and config: `overlayfs` or `native`. */
  readonly name: string;
  /**
   * How a layer is applied into an active snapshot's directory. `overlay`: the directory is an
   * overlay upper dir, whiteouts are written as 0:0 character devices and opaque xattrs (even when
   * the snapshot has no parent: containerd #13030 lost whiteouts by deciding from the mount type);
   * `native`: the directory holds the whole tree (a copy of the parent), whiteouts are deletions.
   */
  readonly layerFormat: 'overlay' | 'native';
  /** The snapshotter's root, e.g. `<root>/io.containerd.snapshotter.v1.overlayfs`. */
  readonly root: string;

  stat(key: string): Promise<SnapshotInfo>; // NotFound if absent
  /**
   * Whether the snapshot's directory is on disk: its record alone proves nothing once the
   * directory was removed behind berth's back (repairs ask this, never build the path themselves).
   */
  onDisk(info: SnapshotInfo): Promise<boolean>;
  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  /**
   * Read-only mounts showing the committed snapshot `parent` (an image's top layer), without making
   * a view: for reading an image's files while changing nothing (`berth plan`'s checks).
   */
  peekMounts(parent: string): Promise<Mount[]>;
  commit(name: string, key: string, opts?: CommitOptions): Promise<void>;
  remove(key: string): Promise<void>; // FailedPrecondition if it has children
  walk(): AsyncIterable<SnapshotInfo>;
  usage(key: string): Promise<Usage>;
  /** Start-up repair: remove half-made snapshot dirs and dirs with no metadata record. */
  recover(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
