/**
 * The overlayfs snapshotter, in containerd's layout: `<root>/snapshots/<id>/fs` holds a layer's
 * own files (its upper dir), `<id>/work` is overlayfs's work dir for active snapshots.
 *
 * Mounts, as containerd's: no parent → a bind mount of `fs` (ro for a view); a view of exactly
 * one parent → a ro bind of that parent's `fs`; otherwise overlay with `lowerdir` = the parents'
 * `fs`, nearest first, plus `upperdir`/`workdir` for an active snapshot. Long option strings are
 * compacted by `mountAll` (src/snapshots/mount.ts).
 */
import { mkdir } from 'node:fs/promises';
import { DirSnapshotter } from '../dir-snapshotter.ts';
import type { Mount, SnapshotKind } from '../snapshotter.ts';
import type { SnapshotRow } from '../store.ts';

export class OverlaySnapshotter extends DirSnapshotter {
  readonly name = 'overlayfs';
  readonly layerFormat = 'overlay' as const;

  /** `root` is the snapshotter's own dir, e.g. `<berth root>/io.containerd.snapshotter.v1.overlayfs`. */
  constructor(root: string) {
    super(root);
  }

  treeDir(id: number | string): string {
    return `${this.dirOf(id)}/fs`;
  }

  protected async build(dir: string, kind: SnapshotKind): Promise<void> {
    await mkdir(dir, { mode: 0o700 });
    await mkdir(`${dir}/fs`, { mode: 0o755 });
    if (kind === 'active') await mkdir(`${dir}/work`, { mode: 0o700 });
  }

  protected mountsOf(row: SnapshotRow, parentIds: number[]): Mount[] {
    const ro = row.kind !== 'active';
    if (parentIds.length === 0) {
      return [{ type: 'bind', source: this.treeDir(row.idNum), options: [ro ? 'ro' : 'rw', 'rbind'] }];
    }
    if (ro && parentIds.length === 1) {
      return [{ type: 'bind', source: this.treeDir(parentIds[0]!), options: ['ro', 'rbind'] }];
    }
    const lower = `lowerdir=${parentIds.map((id) => this.treeDir(id)).join(':')}`;
    if (ro) return [{ type: 'overlay', source: 'overlay', options: [lower] }];
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [`workdir=${this.dirOf(row.idNum)}/work`, `upperdir=${this.treeDir(row.idNum)}`, lower],
      },
    ];
  }
}
