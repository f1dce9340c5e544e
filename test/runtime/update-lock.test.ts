import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLogTail } from '../../src/runtime/logs.ts';
import type { ContainerSpec } from '../../src/manifest/types.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import { buildSpec } from '../../src/runtime/spec.ts';
import { ensureUpdateLock, flocksOnInode, removeUpdateLock, updateLockFile, updateLockHeld } from '../../src/runtime/update-lock.ts';
import { buildFlockHold } from './fixtures/flock-hold.ts';
import { bindRootfs, cleanup, makeBusyboxRootfs, request, requireRoot, spec, tempDir, until } from './helpers.ts';

let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  requireRoot();
  dir = await tempDir('update-lock');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
  await cleanup(undefined, dir);
});

/**
 * `flock [-s] FILE sleep 60`, resolved once it holds the lock. `--close`: the lock stays with
 * flock(1) alone, so its exit (awaited by `release`) is the end of the hold; its own process group
 * so the sleep goes with it.
 */
async function holdOnHost(file: string, shared = false): Promise<ChildProcess> {
  const child = spawn('flock', ['--close', ...(shared ? ['--shared'] : []), file, 'sh', '-c', 'echo locked; exec sleep 60'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(line.toString()).toBe('locked\n');
  return child;
}

async function release(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}

describe('update lock files', () => {
  it('are created as regular 0644 files under <root>/locks, whatever the umask, and kept as they are', async () => {
    const root = path.join(dir, 'files');
    const old = process.umask(0o077);
    let file: string;
    try {
      file = await ensureUpdateLock(root, 'web');
    } finally {
      process.umask(old);
    }
    expect(file).toBe(path.join(root, 'locks', 'web'));
    expect(file).toBe(updateLockFile(root, 'web'));
    const st = await lstat(file);
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o644);
    expect(st.size).toBe(0);
    // A second call keeps the same file (an app may hold it).
    await ensureUpdateLock(root, 'web');
    expect((await stat(file)).ino).toBe(st.ino);
  });

  it('replace a directory or a symlink at their path, never touching what a symlink points to', async () => {
    const root = path.join(dir, 'replace');
    await mkdir(path.join(root, 'locks', 'a-dir', 'inside'), { recursive: true });
    const target = path.join(dir, 'precious');
    await writeFile(target, 'keep me');
    await chmod(target, 0o600);
    await symlink(target, path.join(root, 'locks', 'a-link'));
    for (const name of ['a-dir', 'a-link']) {
      const st = await lstat(await ensureUpdateLock(root, name));
      expect(st.isFile()).toBe(true);
      expect(st.mode & 0o7777).toBe(0o644);
    }
    expect(await readFile(target, 'utf8')).toBe('keep me');
    expect((await stat(target)).mode & 0o7777).toBe(0o600);
  });

  it('are removed with what berth remembers of a hold', async () => {
    const root = path.join(dir, 'remove');
    const file = await ensureUpdateLock(root, 'web');
    const holder = await holdOnHost(file);
    expect((await updateLockHeld(root, 'web')).held).toBe(true);
    expect(existsSync(path.join(root, 'locks', '.held-since', 'web'))).toBe(true);
    await release(holder);
    await removeUpdateLock(root, 'web');
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.join(root, 'locks', '.held-since', 'web'))).toBe(false);
    await removeUpdateLock(root, 'web'); // twice is fine
  });
});

describe('updateLockHeld, with a real flock held by a host process', () => {
  it('held while a process holds the flock, since when berth first saw it; not held once it dies', async () => {
    const root = path.join(dir, 'host');
    const file = await ensureUpdateLock(root, 'web');
    expect(await updateLockHeld(root, 'web')).toEqual({ held: false, heldForMs: 0 });

    const holder = await holdOnHost(file);
    const first = await updateLockHeld(root, 'web', undefined, 1_000_000);
    expect(first).toEqual({ held: true, since: new Date(1_000_000), heldForMs: 0 });
    // The same hold, seen later (by this or a restarted berth: it is kept on disk).
    expect(await updateLockHeld(root, 'web', undefined, 1_005_000)).toEqual({ held: true, since: new Date(1_000_000), heldForMs: 5000 });

    await release(holder);
    expect(await updateLockHeld(root, 'web', undefined, 1_010_000)).toEqual({ held: false, heldForMs: 0 });
    // A new hold starts a new count.
    const again = await holdOnHost(file);
    expect(await updateLockHeld(root, 'web', undefined, 2_000_000)).toEqual({ held: true, since: new Date(2_000_000), heldForMs: 0 });
    await release(again);
  });

  it('a shared flock holds it too; a flock on another file does not', async () => {
    const root = path.join(dir, 'shared');
    const file = await ensureUpdateLock(root, 'web');
    const other = await ensureUpdateLock(root, 'other');
    const onOther = await holdOnHost(other);
    expect((await updateLockHeld(root, 'web')).held).toBe(false);
    const shared = await holdOnHost(file, true);
    expect((await updateLockHeld(root, 'web')).held).toBe(true);
    await release(shared);
    await release(onOther);
    expect((await updateLockHeld(root, 'web')).held).toBe(false);
  });

  it('a hold remembered from before a reboot (another boot id) counts from now', async () => {
    const root = path.join(dir, 'reboot');
    const file = await ensureUpdateLock(root, 'web');
    await mkdir(path.join(root, 'locks', '.held-since'), { recursive: true });
    await writeFile(path.join(root, 'locks', '.held-since', 'web'), JSON.stringify({ bootId: 'a-previous-boot', sinceMs: 5 }));
    const holder = await holdOnHost(file);
    expect(await updateLockHeld(root, 'web', undefined, 7_000)).toEqual({ held: true, since: new Date(7_000), heldForMs: 0 });
    await release(holder);
  });

  it('without util-linux flock installed, /proc/locks alone decides', async () => {
    const root = path.join(dir, 'no-flock-binary');
    const file = await ensureUpdateLock(root, 'web');
    const holder = await holdOnHost(file);
    const PATH = process.env.PATH;
    process.env.PATH = path.join(dir, 'empty-path');
    try {
      expect((await updateLockHeld(root, 'web')).held).toBe(true);
      await release(holder);
      expect((await updateLockHeld(root, 'web')).held).toBe(false);
    } finally {
      process.env.PATH = PATH;
    }
  });

  it('a missing lock file is not held', async () => {
    expect(await updateLockHeld(path.join(dir, 'nothing'), 'web')).toEqual({ held: false, heldForMs: 0 });
  });
});

describe('flocksOnInode', () => {
  it('lists flock holders of that inode number, not waiters nor POSIX locks', () => {
    const text = [
      '1: POSIX  ADVISORY  WRITE 12503 fe:00:4242 0 EOF',
      '2: FLOCK  ADVISORY  WRITE 12270 fe:00:4242 0 EOF',
      '2: -> FLOCK  ADVISORY  WRITE 12271 fe:00:4242 0 EOF',
      '3: FLOCK  ADVISORY  READ 900 103:1f:4242 0 EOF',
      '4: FLOCK  ADVISORY  WRITE 901 fe:00:42420 0 EOF',
      '5: OFDLCK ADVISORY  READ -1 fe:00:4242 0 EOF',
      '',
    ].join('\n');
    expect(flocksOnInode(text, 4242n)).toEqual([
      { major: 0xfe, minor: 0 },
      { major: 0x103, minor: 0x1f },
    ]);
    expect(flocksOnInode(text, 1n)).toEqual([]);
  });
});

describe('the update lock mount in the OCI spec', () => {
  const build = (mounts: ContainerSpec['mounts'], updateLockPath?: string) =>
    buildSpec({ name: 'web', spec: spec({ mounts }), image: { config: { Cmd: ['/bin/true'] } }, root: '/var/lib/berth', updateLockPath, arch: 'x64' }).mounts;
  const lockMount = { destination: '/run/berth/lock', type: 'bind', source: '/var/lib/berth/locks/web', options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] };

  it('comes after the user mounts, so a tmpfs on /run does not hide it', () => {
    const mounts = build([{ type: 'tmpfs', target: '/run' }], '/run/berth/lock');
    expect(mounts.map((m) => m.destination).slice(-2)).toEqual(['/run', '/run/berth/lock']);
    expect(mounts.at(-1)).toEqual(lockMount);
  });

  it('is absent without lock_path, and a user mount of the same target wins', () => {
    expect(build([]).some((m) => m.destination === '/run/berth/lock')).toBe(false);
    const mounts = build([{ type: 'bind', source: '/srv/lock', target: '/run/berth/lock', readOnly: false }], '/run/berth/lock');
    expect(mounts.filter((m) => m.destination === '/run/berth/lock')).toEqual([
      { destination: '/run/berth/lock', type: 'bind', source: '/srv/lock', options: ['rbind', 'rw'] },
    ]);
  });
});

describe('the update lock inside a runc container', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  const name = `lock-${process.pid}`;

  beforeAll(async () => {
    root = path.join(dir, 'runc');
    rootfs = await makeBusyboxRootfs(path.join(root, 'image'));
    await copyFile(buildFlockHold(root), path.join(rootfs, 'bin', 'flock-hold'));
    await chmod(path.join(rootfs, 'bin', 'flock-hold'), 0o755);
    rt = await Runtime.open({ root: path.join(root, 'berth'), binary: 'runc', cgroupParent: '/berth-test', updateLockPath: '/run/berth/lock' });
  });
  afterAll(async () => cleanup(rt, path.join(root, 'berth')));

  it('is mounted read-only at lock_path; a non-root app takes it: held; the app is killed: not held', async () => {
    const berthRoot = rt.root;
    // A read-only rootfs without /run: the mount target is made before the root turns read-only.
    await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/flock-hold', '/run/berth/lock'], user: 'app', readOnlyRootfs: true }));
    const file = updateLockFile(berthRoot, name);
    const st = await lstat(file);
    expect(st.isFile() && (st.mode & 0o7777) === 0o644).toBe(true);
    const bundle = JSON.parse(await readFile(path.join(rt.containerDir(name), 'config.json'), 'utf8'));
    expect(bundle.mounts).toContainEqual({ destination: '/run/berth/lock', type: 'bind', source: file, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] });
    expect((await updateLockHeld(berthRoot, name)).held).toBe(false);

    await rt.start(name);
    await until(async () => (await updateLockHeld(berthRoot, name)).held, 10_000, 'the container to hold its update lock');
    expect((await readLogTail(rt.containerDir(name))).toString()).toContain('locked\n');
    // The container's flock is listed under the host file's own device and inode (the cheap path is exact here).
    const host = await stat(file, { bigint: true });
    const listed = flocksOnInode(await readFile('/proc/locks', 'utf8'), host.ino);
    expect(listed).toContainEqual({ major: Number(host.dev >> 8n), minor: Number(host.dev & 0xffn) });

    await rt.kill(name, 'SIGKILL');
    await until(async () => (await rt.status(name)).state === 'exited', 10_000, 'the container to exit');
    expect(await updateLockHeld(berthRoot, name)).toEqual({ held: false, heldForMs: 0 });

    await rt.delete(name, { gracePeriodMs: 0 });
    expect(existsSync(file)).toBe(false);
  });

  it('the app cannot write the host file through the mount', async () => {
    const writer = `${name}-w`;
    await rt.create(request(writer, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo junk > /run/berth/lock; echo "write exit $?"'] }));
    await rt.start(writer);
    await until(async () => (await rt.status(writer)).state === 'exited', 10_000, 'the writer to exit');
    // stderr and stdout are two streams now: their lines are not ordered against each other.
    const log = (await readLogTail(rt.containerDir(writer))).toString();
    expect(log).toMatch(/Read-only file system/);
    expect(log).toMatch(/write exit [1-9]/);
    expect((await stat(updateLockFile(rt.root, writer))).size).toBe(0);
    await rt.delete(writer, { gracePeriodMs: 0 });
  });
});
