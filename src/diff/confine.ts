/**
 * Confinement of tar entry names to an extraction root, as containerd's pkg/archive and
 * continuity's fs.RootPath do: a name is cleaned as if `/` were the root (`..` cannot climb
 * above it, absolute names are rooted at it), and every existing path component that is a
 * symlink is followed *inside* the root (a link to `/etc` means `<root>/etc`, a link to
 * `../../..` stops at `<root>`). Nothing outside the root is ever looked at.
 *
 * Synchronous on purpose: applying a layer is a tight loop of small syscalls and awaiting each
 * one through the thread pool costs more than the call itself (see PERF-NOTES).
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { BerthError } from '../errors.ts';

const MAX_SYMLINKS = 255;

/** lstat that returns undefined for a path that does not exist (ENOENT, or ENOTDIR below a file). */
export function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err: any) {
    if (err?.code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Clean a tar name into a root-relative path without leading or trailing slash ('' = the root). */
export function cleanName(name: string): string {
  const n = posix.normalize('/' + name);
  return n === '/' ? '' : n.replace(/\/+$/, '').slice(1);
}

/**
 * Resolve `rel` (a cleaned, root-relative path) inside `root`, following symlinks of existing
 * components within the root. Components that do not exist are appended as they are.
 * Returns an absolute path that always starts with `root`.
 */
export function rootPath(root: string, rel: string): string {
  const resolved: string[] = [];
  const pending = rel === '' ? [] : rel.split('/').reverse();
  let links = 0;
  while (pending.length > 0) {
    const c = pending.pop()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const candidate = root + '/' + (resolved.length ? resolved.join('/') + '/' : '') + c;
    // Looked up even below a missing component: `missing/../link` must still follow `link`.
    const st = lstatOrUndefined(candidate);
    if (!st?.isSymbolicLink()) {
      resolved.push(c);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new BerthError('InvalidArgument', `too many symlinks resolving ${rel} in ${root}`, { place: { file: candidate } });
    }
    const target = readlinkSync(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    const parts = target.split('/');
    for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]!);
  }
  return resolved.length ? root + '/' + resolved.join('/') : root;
}
