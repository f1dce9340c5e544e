/** Real parts for runtime tests: a busybox rootfs, a runtime on a temp root, specs with defaults. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ContainerSpec } from '../../src/manifest/types.ts';
import type { Mount } from '../../src/snapshots/snapshotter.ts';
import { Runtime, type CreateRequest } from '../../src/runtime/runtime.ts';

export const BUSYBOX = '/bin/busybox';
const APPLETS = [
  'sh',
  'echo',
  'sleep',
  'cat',
  'id',
  'env',
  'ls',
  'head',
  'dd',
  'yes',
  'seq',
  'touch',
  'true',
  'false',
  'pwd',
  'mkdir',
  'printf',
  'tail',
  'hostname',
  'unshare',
];

/** Fail loudly (never skip) when the machine cannot run these tests. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('runtime tests need root (runc, mounts, cgroups)');
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: apt-get install busybox-static`);
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `berth-rt-${prefix}-`));
}

/** A directory rootfs: static busybox + applet symlinks, /etc/passwd with root and app (1000). */
export async function makeBusyboxRootfs(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'etc'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'home/app', 'data']) await mkdir(path.join(dir, d), { recursive: true });
  await copyFile(BUSYBOX, path.join(dir, 'bin/busybox'));
  for (const a of APPLETS) await symlink('busybox', path.join(dir, 'bin', a));
  await writeFile(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(path.join(dir, 'etc/group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n');
  return dir;
}

export const bindRootfs = (dir: string): Mount[] => [{ type: 'bind', source: dir, options: ['rbind', 'rw'] }];

export function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    image: 'test/busybox:latest',
    env: {},
    restartPolicy: 'Never',
    network: 'host',
    mounts: [],
    resources: {},
    readOnlyRootfs: false,
    stopSignal: 'SIGTERM',
    stopGracePeriodMs: 2000,
    dependsOn: [],
    ...over,
  };
}

export function request(name: string, mounts: Mount[], s: Partial<ContainerSpec> = {}): CreateRequest {
  return {
    name,
    spec: spec(s),
    imageRef: 'test/busybox:latest',
    imageDigest: 'sha256:' + '0'.repeat(64),
    imageConfig: { config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh', '-c', 'echo hello from busybox'] } },
    snapshotKey: `test/${name}`,
    snapshotChain: [],
    mounts,
  };
}

/**
 * The runtimes to test. crun refuses hybrid cgroup hosts where cgroup2 still holds a controller
 * ("drop all controllers from cgroupv2"); on such a host it runs in a private mount namespace
 * without the cgroup2 mount, where it sees plain cgroup v1 (the host itself is left unchanged).
 */
export async function runtimeBinary(name: 'runc' | 'crun', dir: string): Promise<string> {
  if (name === 'runc') return 'runc';
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  if (!existsSync(unified) || readFileSync(unified, 'utf8').trim() === '') return 'crun';
  const wrapper = path.join(dir, 'crun');
  await writeFile(wrapper, `#!/bin/sh\nexec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' crun "$@"\n`, { mode: 0o755 });
  return wrapper;
}

export async function openRuntime(root: string, o: { binary?: string; logMaxBytes?: number; logMaxFiles?: number } = {}): Promise<Runtime> {
  return Runtime.open({ root, binary: o.binary ?? 'runc', logMaxBytes: o.logMaxBytes, logMaxFiles: o.logMaxFiles, cgroupParent: '/berth-test' });
}

/**
 * What most runtime tests start from (as root): a temp dir, a busybox rootfs in it and a runtime
 * over `<dir>/berth`. `binary` picks the OCI runtime (it may need the dir, e.g. crun's wrapper).
 */
export async function runtimeFixture(
  prefix: string,
  o: { binary?: (root: string) => Promise<string> } = {},
): Promise<{ root: string; rootfs: string; rt: Runtime }> {
  requireRoot();
  const root = await tempDir(prefix);
  const rootfs = await makeBusyboxRootfs(path.join(root, 'image'));
  const rt = await openRuntime(path.join(root, 'berth'), { binary: o.binary && (await o.binary(root)) });
  return { root, rootfs, rt };
}

/** Stop and delete every container under the runtime's root, then remove the root. */
export async function cleanup(rt: Runtime | undefined, root: string): Promise<void> {
  if (rt) {
    for (const name of await readdir(rt.dir).catch(() => [] as string[])) {
      await rt.delete(name, { gracePeriodMs: 0 }).catch(() => {});
    }
  }
  // Anything still mounted under the root (a failed test) must be unmounted before rm -rf.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && p.startsWith(root));
  for (const m of mounts.sort().reverse()) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {}
  }
  await rm(root, { recursive: true, force: true });
}

export async function until<T>(fn: () => Promise<T | undefined | false>, ms = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Host pids whose command line has `marker` as one argument (a number no other process uses). */
export async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmdline = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(marker)) found.push(Number(e));
  }
  return found;
}
