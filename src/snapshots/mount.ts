/**
 * Applying `Mount[]` (what a Snapshotter returns) to a target directory, and undoing it.
 * Node has no mount(2), so this runs mount(8)/umount(8) from util-linux.
 *
 * Deep images make overlay option strings longer than the kernel accepts (one page, containerd
 * #2497). As containerd does, when the options are too long the common directory of all the
 * layer paths is stripped and mount(8) runs with that directory as its working directory, so the
 * lowerdirs become short relative paths.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { BerthError, invalidArgument } from '../errors.ts';
import type { Mount } from './snapshotter.ts';

const run = promisify(execFile);

/** The kernel copies mount data into one page; leave room as containerd does. */
const MAX_MOUNT_DATA = 4096 - 512;

export async function mountAll(mounts: Mount[], target: string, signal?: AbortSignal): Promise<void> {
  for (const m of mounts) await mountOne(m, target, signal);
}

async function mountOne(m: Mount, target: string, signal?: AbortSignal): Promise<void> {
  let options = [...m.options];
  let cwd: string | undefined;
  const args: string[] = [];
  if (m.type === 'bind' || options.includes('bind') || options.includes('rbind')) {
    // util-linux applies "ro" to a bind mount by remounting it, so one call suffices.
    if (!options.includes('bind') && !options.includes('rbind')) options.unshift('rbind');
    args.push('-o', options.join(','), m.source, target);
  } else if (m.type === 'overlay') {
    if (options.join(',').length > MAX_MOUNT_DATA) ({ options, cwd } = compactOverlayOptions(options));
    if (options.join(',').length > MAX_MOUNT_DATA) {
      throw invalidArgument(`overlay mount of ${target}: ${options.length} options are too long even when compacted`);
    }
    args.push('-t', 'overlay', '-o', options.join(','), m.source, target);
  } else {
    args.push('-t', m.type, ...(options.length ? ['-o', options.join(',')] : []), m.source, target);
  }
  try {
    await run('mount', args, { cwd, signal });
  } catch (err: any) {
    throw new BerthError('FailedPrecondition', `mount ${m.type} on ${target}: ${(err.stderr || err.message).trim()}`, {
      cause: err,
      place: { file: target },
    });
  }
}

/**
 * Make lowerdir/upperdir/workdir relative to their longest common directory; returns the options
 * and the directory mount(8) must run in.
 */
export function compactOverlayOptions(options: string[]): { options: string[]; cwd: string } {
  const dirs: string[] = [];
  for (const o of options) {
    const [key, value] = splitOption(o);
    if (key === 'lowerdir') dirs.push(...value!.split(':'));
    else if (key === 'upperdir' || key === 'workdir') dirs.push(value!);
  }
  const cwd = commonDir(dirs);
  const rel = (p: string) => path.relative(cwd, p) || '.';
  const compacted = options.map((o) => {
    const [key, value] = splitOption(o);
    if (key === 'lowerdir') return `lowerdir=${value!.split(':').map(rel).join(':')}`;
    if (key === 'upperdir' || key === 'workdir') return `${key}=${rel(value!)}`;
    return o;
  });
  return { options: compacted, cwd };
}

function splitOption(o: string): [string, string | undefined] {
  const i = o.indexOf('=');
  return i < 0 ? [o, undefined] : [o.slice(0, i), o.slice(i + 1)];
}

function commonDir(paths: string[]): string {
  if (paths.length === 0) return '/';
  let parts = path.dirname(paths[0]!).split('/');
  for (const p of paths.slice(1)) {
    const q = p.split('/');
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join('/') || '/';
}

/** Unmount `target`, retrying while busy (a process may still be leaving it); lazily as a last resort. */
export async function unmount(target: string, opts: { signal?: AbortSignal; retries?: number } = {}): Promise<void> {
  const retries = opts.retries ?? 10;
  for (let attempt = 0; ; attempt++) {
    try {
      await run('umount', [target], { signal: opts.signal });
      return;
    } catch (err: any) {
      const msg = String(err.stderr || err.message);
      if (/not mounted|no mount point specified|mountpoint not found/i.test(msg)) return;
      if (/busy/i.test(msg) && attempt < retries) {
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        continue;
      }
      if (/busy/i.test(msg)) {
        await run('umount', ['-l', target], { signal: opts.signal });
        return;
      }
      throw new BerthError('FailedPrecondition', `umount ${target}: ${msg.trim()}`, { cause: err, place: { file: target } });
    }
  }
}

/** Whether `target` is a mount point now (from /proc/self/mountinfo). */
export async function isMountPoint(target: string): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const want = path.resolve(target);
  return info.split('\n').some((line) => unescapeMountPath(line.split(' ')[4] ?? '') === want);
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
