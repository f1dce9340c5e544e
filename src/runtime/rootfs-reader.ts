/**
 * Reading an image's files straight from its snapshot directories, without mounting anything.
 * Used to check a spec before anything is created: does the command exist, what do /etc/passwd and
 * /etc/group say. Symlinks are resolved inside the root (an absolute target means `<root>/target`),
 * overlay whiteouts (0:0 character devices) hide lower layers' files.
 */
import { lstat, readFile, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ifExists } from '../durable-file.ts';
import { invalidArgument } from '../errors.ts';
import type { Mount } from '../snapshots/snapshotter.ts';

export class RootfsReader {
  /** Layer directories, top (upper) first. */
  readonly layers: string[];

  constructor(layers: string[]) {
    this.layers = layers;
  }

  /** The directories a `Mount[]` (bind or overlay, as a Snapshotter returns) shows, top first. */
  static fromMounts(mounts: Mount[]): RootfsReader {
    if (mounts.length !== 1) throw invalidArgument(`rootfs: expected exactly one mount, got ${mounts.length}`);
    const m = mounts[0]!;
    if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) return new RootfsReader([m.source]);
    if (m.type === 'overlay') {
      const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
      const upper = opt('upperdir');
      const lower = opt('lowerdir')?.split(':') ?? [];
      return new RootfsReader([...(upper ? [upper] : []), ...lower]);
    }
    throw invalidArgument(`rootfs: cannot read a "${m.type}" mount`);
  }

  /** Resolve `p` (absolute, in the container) to the host path of the visible file, or undefined. */
  async resolve(p: string, followFinal = true): Promise<{ hostPath: string; stat: Stats } | undefined> {
    let pending = p.split('/').filter(Boolean);
    let resolved: string[] = [];
    for (let hops = 0; pending.length > 0; ) {
      const comp = pending.shift()!;
      if (comp === '.') continue;
      if (comp === '..') {
        resolved.pop();
        continue;
      }
      const rel = [...resolved, comp].join('/');
      const found = await this.lookup(rel);
      if (!found) return undefined;
      if (found.stat.isSymbolicLink() && (pending.length > 0 || followFinal)) {
        if (++hops > 40) throw invalidArgument(`rootfs: too many levels of symbolic links resolving ${p}`);
        const target = await readlink(found.hostPath);
        pending = [...target.split('/').filter(Boolean), ...pending];
        if (target.startsWith('/')) resolved = [];
        continue;
      }
      if (pending.length > 0 && !found.stat.isDirectory()) return undefined;
      resolved.push(comp);
      if (pending.length === 0) return found;
    }
    // The root itself.
    const top = this.layers[0]!;
    return { hostPath: top, stat: await lstat(top) };
  }

  private async lookup(rel: string): Promise<{ hostPath: string; stat: Stats } | undefined> {
    for (const layer of this.layers) {
      const hostPath = path.join(layer, rel);
      const stat = await ifExists(lstat(hostPath));
      if (!stat) continue;
      if (stat.isCharacterDevice() && stat.rdev === 0) return undefined; // overlay whiteout
      return { hostPath, stat };
    }
    return undefined;
  }

  /** The text of a file, or undefined if the image has no such file. */
  async readText(p: string): Promise<string | undefined> {
    const f = await this.resolve(p);
    if (!f?.stat.isFile()) return undefined;
    return readFile(f.hostPath, 'utf8');
  }

  /** Whether `p` is an executable regular file in the image. */
  async isExecutable(p: string): Promise<boolean> {
    const f = await this.resolve(p);
    return !!f && f.stat.isFile() && (f.stat.mode & 0o111) !== 0;
  }
}
