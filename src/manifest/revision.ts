/**
 * The revision of the manifests: the git commit of the directory when it is in a git work tree,
 * with `-dirty` appended when tracked or untracked files under it differ from that commit (as
 * `git describe --dirty` does). `status` shows it as the last applied revision.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `<commit>` or `<commit>-dirty`; undefined when not in a git work tree, or git is missing. */
export async function manifestRevision(path: string, signal?: AbortSignal): Promise<string | undefined> {
  const dir = (await stat(path)).isDirectory() ? path : dirname(path);
  const git = async (...args: string[]) =>
    (await run('git', ['-C', dir, ...args], { signal, encoding: 'utf8', timeout: 10_000, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } })).stdout.trim();
  let commit: string;
  try {
    if ((await git('rev-parse', '--is-inside-work-tree')) !== 'true') return undefined;
    commit = await git('rev-parse', '--verify', '--quiet', 'HEAD');
  } catch {
    signal?.throwIfAborted();
    return undefined; // not a work tree, no commit yet, or no git binary: no revision to tell
  }
  const changes = await git('status', '--porcelain', '--untracked-files=normal', '--', '.');
  return changes === '' ? commit : `${commit}-dirty`;
}
