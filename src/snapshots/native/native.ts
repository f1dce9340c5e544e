/**
 * The native snapshotter, for kernels (or containers) without overlayfs: every snapshot is a
 * full copy of its parent at `<root>/snapshots/<id>`, mounted with a bind mount (ro for a view).
 * Layers are applied into the copy, whiteouts as deletions. Copies use `cp -a --reflink=auto`,
 * so filesystems with reflinks (btrfs, xfs) share data blocks.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { BerthError } from '../../errors.ts';
import { DirSnapshotter } from '../dir-snapshotter.ts';
import type { Mount, SnapshotKind } from '../snapshotter.ts';
import type { SnapshotRow } from '../store.ts';

export class NativeSnapshotter extends DirSnapshotter {
  readonly name = 'native';
  readonly layerFormat = 'native' as const;

  /** `root` is the snapshotter's own dir, e.g. `<berth root>/io.containerd.snapshotter.v1.native`. */
  constructor(root: string) {
    super(root);
  }

  treeDir(id: number | string): string {
    return this.dirOf(id);
  }

  protected async build(dir: string, _kind: SnapshotKind, parentIds: number[], signal?: AbortSignal): Promise<void> {
    if (parentIds.length === 0) {
      await mkdir(dir, { mode: 0o755 });
      return;
    }
    const src = this.treeDir(parentIds[0]!);
    await new Promise<void>((resolve, reject) => {
      execFile('cp', ['-a', '--reflink=auto', '--', src, dir], { signal }, (err, _out, stderr) => {
        if (err) reject(new BerthError('Internal', `copy of snapshot ${src}: ${String(stderr || err.message).trim()}`, { cause: err, place: { file: src } }));
        else resolve();
      });
    });
  }

  protected mountsOf(row: SnapshotRow): Mount[] {
    return [{ type: 'bind', source: this.treeDir(row.idNum), options: [row.kind === 'active' ? 'rw' : 'ro', 'rbind'] }];
  }
}
