/**
 * Network namespaces that outlive their processes, as `ip netns add` makes them, under berth's
 * root instead of /run/netns: a file bind-mounted from a namespace `unshare --net=FILE` creates.
 * The directory is itself a private bind mount (as iproute2 does with /run/netns), which a
 * namespace bind mount needs, so the mount is not propagated to other mount namespaces either.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { BerthError } from '../errors.ts';
import { netnsDir, netnsPath } from './paths.ts';

const run = promisify(execFile);

/** Mount points of this process's mount namespace (octal escapes decoded). */
async function mountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return new Set(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8)))),
  );
}

async function command(args: string[], what: string, signal?: AbortSignal): Promise<void> {
  try {
    await run(args[0]!, args.slice(1), { signal });
  } catch (err: any) {
    throw new BerthError('Internal', `${what}: ${args.join(' ')} failed: ${String(err?.stderr || err?.message).trim()}`, { cause: err });
  }
}

/** Whether the container's namespace file is a live namespace (not left empty by a reboot). */
export async function netnsMounted(root: string, container: string): Promise<boolean> {
  return (await mountPoints()).has(netnsPath(root, container));
}

/** A new, empty network namespace at the container's path (one left there is replaced). */
export async function createNetns(root: string, container: string, signal?: AbortSignal): Promise<string> {
  const dir = netnsDir(root);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mounts = await mountPoints();
  if (!mounts.has(dir)) {
    await command(['mount', '--bind', dir, dir], `network namespace directory ${dir}`, signal);
    await command(['mount', '--make-private', dir], `network namespace directory ${dir}`, signal);
  }
  const file = netnsPath(root, container);
  if (mounts.has(file)) await command(['umount', file], `network namespace of ${container}`, signal);
  await writeFile(file, '', { mode: 0o600 });
  await command(['unshare', `--net=${file}`, 'true'], `network namespace of ${container}`, signal);
  return file;
}

/**
 * Unmount and remove the container's namespace file; nothing if it is gone. The last one out
 * unmounts the directory too, so a root without containers on networks holds no mount.
 */
export async function removeNetns(root: string, container: string, signal?: AbortSignal): Promise<void> {
  const file = netnsPath(root, container);
  if ((await mountPoints()).has(file)) await command(['umount', file], `network namespace of ${container}`, signal);
  await rm(file, { force: true });
  const dir = netnsDir(root);
  const left = await readdir(dir).catch(() => undefined);
  if (left?.length === 0 && (await mountPoints()).has(dir)) await command(['umount', dir], `network namespace directory ${dir}`, signal);
}
