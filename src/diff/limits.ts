/**
 * Bounds on what one layer can make the host write or hold. A layer is attacker-controlled until
 * its diff_id is checked, which happens only after the whole stream was applied: a few KiB of gzip
 * can inflate to terabytes of zeros, a million empty entries, or PAX headers that tar-stream keeps
 * whole in memory. Past any bound the apply fails with ResourceExhausted naming the layer, and the
 * caller discards the snapshot.
 *
 * The free-space bound watches what the apply actually writes (the pull's own check before the
 * download counts compressed sizes only): every `checkEveryBytes` of uncompressed stream it looks
 * at the snapshotter's filesystem and stops once less than `reserveBytes` is left.
 */
import { statfsSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { resourceExhausted } from '../errors.ts';
import { formatBytes } from '../format-bytes.ts';

export interface ApplyLimits {
  /** Uncompressed bytes of one layer's tar stream. */
  layerBytes: number;
  /** Tar entries in one layer (files, directories, links, whiteouts, …). */
  entries: number;
  /** One PAX or GNU long-name/long-link header (held in memory whole while it is parsed). */
  headerBytes: number;
  /**
   * What one layer keeps in memory until its end: entry names (a path can be 4 KiB, and a million
   * of them 4 GiB) and extended attributes.
   */
  heldBytes: number;
  /** Free bytes the filesystem being written must keep while a layer is applied. */
  reserveBytes: number;
  /** Uncompressed bytes between two looks at the free space (statfs). */
  checkEveryBytes: number;
}

/**
 * Real layers stay far below these: the biggest common images have layers of a few GiB and a few
 * hundred thousand files; Go's archive/tar and containerd refuse special headers over 1 MiB. The
 * reserve matches the config's `gc.reserve` default.
 */
export const DEFAULT_APPLY_LIMITS: ApplyLimits = {
  layerBytes: 16 * 1024 ** 3,
  entries: 1_000_000,
  headerBytes: 1024 * 1024,
  heldBytes: 256 * 1024 * 1024,
  reserveBytes: 256 * 1024 * 1024,
  checkEveryBytes: 64 * 1024 * 1024,
};

/** The config keys that raise each bound, for messages. */
const KEY = { layerBytes: 'unpack.max_layer_size', entries: 'unpack.max_layer_entries', headerBytes: 'unpack.max_header_size' } as const;

/** Counts what one layer's apply consumed and throws ResourceExhausted past a bound. */
export class LayerBudget {
  readonly limits: ApplyLimits;
  private readonly layer: string;
  private readonly root: string;
  private bytes = 0;
  private entries = 0;
  private heldBytes = 0;
  private sinceCheck = 0;

  constructor(root: string, layer: string, limits: Partial<ApplyLimits> = {}) {
    this.root = root;
    this.layer = layer;
    this.limits = { ...DEFAULT_APPLY_LIMITS, ...withoutUndefined(limits) };
  }

  /** `n` more bytes of the uncompressed stream. */
  addBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > this.limits.layerBytes) {
      throw resourceExhausted(
        `layer ${this.layer}: more than ${formatBytes(this.limits.layerBytes)} uncompressed (the limit per layer, ${KEY.layerBytes}); refusing it as a decompression bomb`,
      );
    }
    this.sinceCheck += n;
    if (this.sinceCheck >= this.limits.checkEveryBytes) {
      this.sinceCheck = 0;
      this.checkFreeSpace();
    }
  }

  /** One more tar entry, named `name`. */
  addEntry(name: string): void {
    this.addEntries(1);
    this.hold(name.length);
  }

  /** `n` more tar entries (the native helper counts them itself and reports where it stopped). */
  addEntries(n: number): void {
    this.entries += n;
    if (this.entries > this.limits.entries) {
      throw resourceExhausted(
        `layer ${this.layer}: more than ${this.limits.entries} entries (the limit per layer, ${KEY.entries}); refusing it as a decompression bomb`,
      );
    }
  }

  /** `n` bytes (names, extended attributes) are kept in memory for the end of the layer. */
  hold(n: number): void {
    this.heldBytes += n;
    if (this.heldBytes > this.limits.heldBytes) {
      throw resourceExhausted(
        `layer ${this.layer}: more than ${formatBytes(this.limits.heldBytes)} of names and extended attributes; refusing it as a decompression bomb`,
      );
    }
  }

  /** A PAX or GNU long header of `size` bytes is about to be read into memory. */
  checkHeader(size: number, type: string): void {
    if (size > this.limits.headerBytes) {
      throw resourceExhausted(
        `layer ${this.layer}: a ${type} header of ${formatBytes(size)} is over the limit of ${formatBytes(this.limits.headerBytes)} (${KEY.headerBytes})`,
      );
    }
  }

  /** ResourceExhausted if the filesystem holding the root has less than the reserve left. */
  checkFreeSpace(): void {
    const s = statfsSync(this.root);
    const available = s.bavail * s.bsize;
    if (available >= this.limits.reserveBytes) return;
    throw resourceExhausted(
      `layer ${this.layer}: the disk is nearly full: ${formatBytes(available)} left on the filesystem of ${this.root} after ${formatBytes(this.bytes)} of the layer, ` +
        `below the reserve of ${formatBytes(this.limits.reserveBytes)} (gc.reserve); free space or lower the reserve`,
      { place: { file: this.root } },
    );
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The bounds a berth config sets: `[unpack]`, and `gc.reserve` as the free space to keep. */
export function applyLimitsFromConfig(config: Pick<Config, 'unpack' | 'gc'>): Partial<ApplyLimits> {
  return {
    layerBytes: config.unpack.maxLayerBytes,
    entries: config.unpack.maxLayerEntries,
    headerBytes: config.unpack.maxHeaderBytes,
    reserveBytes: config.gc.reserveBytes,
  };
}
