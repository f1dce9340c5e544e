/**
 * The OCI runtime spec (a bundle's config.json) for a container: a PURE function of the image
 * config, the container spec and the image's /etc/passwd and /etc/group text. No disk, no clock.
 *
 * Follows Docker's rules where the issue asks for "the way Docker does":
 *  - `command` replaces the image Entrypoint and, like `docker run --entrypoint`, also drops the
 *    image Cmd; `args` replaces the Cmd.
 *  - Env: the image's, then the spec's on top; PATH defaults to Docker's; HOME from passwd.
 *  - User: spec, else image, else root; `name`, `uid`, `name:group`, `uid:gid`; names must exist in
 *    the image's /etc/passwd (/etc/group); a bare uid not in passwd is allowed (gid 0), as Docker does.
 *  - Docker's default capability set, no-new-privileges, its masked and read-only /proc paths, and a
 *    seccomp allowlist (seccomp-profile.ts) conditioned on the capabilities, as Docker's profile is.
 *  - containerd's and Podman's default limits: RLIMIT_NOFILE 1024 soft, 524288 hard, and 2048 pids.
 */
import path from 'node:path';
import { invalidArgument } from '../errors.ts';
import type { ImageConfig } from '../oci/types.ts';
import type { ContainerSpec } from '../manifest/types.ts';
import { seccompFilter, type OciSeccomp } from './seccomp.ts';
import type { DeviceCgroupRule } from './devices.ts';
import { applyContainerOptions, containerCapabilities, type HostOptionInputs } from './spec-options.ts';
import { updateLockFile } from './update-lock.ts';
import { anonymousVolumes } from './anonymous-volumes.ts';
import { containersDir } from './state.ts';
import { netnsPath } from '../network/paths.ts';
import { secretPath } from '../secrets/paths.ts';

/** The OCI runtime-spec subset berth writes (config.json). */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname?: string;
  /** The container's labels. */
  annotations?: Record<string, string>;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string; path?: string }[];
    cgroupsPath: string;
    resources: {
      devices: DeviceCgroupRule[];
      memory?: { limit: number; swap: number };
      cpu?: { quota: number; period: number };
      pids?: { limit: number };
    };
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
    /** Device nodes runc creates in the container. */
    devices?: { path: string; type: string; major: number; minor: number; fileMode: number; uid: number; gid: number }[];
    sysctl?: Record<string, string>;
  };
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export { DEFAULT_CAPABILITIES } from './spec-options.ts';

export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CPU_PERIOD_US = 100_000;
/**
 * Open files: 1024 soft (select(2) breaks above it) and 524288 hard for the programs that raise
 * their own limit, as containerd and Podman set it; otherwise a task inherits berth's limit, which
 * a systemd unit may set to anything.
 */
export const DEFAULT_NOFILE = { soft: 1024, hard: 524_288 };
/** Processes per container unless `resources.pids` says otherwise: Podman's default, a fork bomb's end. */
export const DEFAULT_PIDS_LIMIT = 2048;

export interface SpecInput extends HostOptionInputs {
  /** Container name: the hostname and the last part of the cgroup path. */
  name: string;
  /** A start-first successor's instance name (`<name>.<hex>`): its cgroup and directory. Absent: `name`. */
  instance?: string;
  spec: ContainerSpec;
  image: ImageConfig | { config?: ImageConfig['config'] };
  /** Text of the image's /etc/passwd and /etc/group, undefined when the image has none. */
  passwd?: string;
  group?: string;
  /** berth's root: named volumes live in `<root>/volumes/<name>`. */
  root: string;
  /** cgroup parent, default `/berth`. */
  cgroupParent?: string;
  /**
   * Host files bind-mounted read-only into a `network: host` container so it resolves names like
   * the host does (Docker does the same); only those that exist on the host.
   */
  hostNetworkFiles?: { resolvConf?: string; hosts?: string };
  /**
   * The highest hard RLIMIT_NOFILE the runtime can set: berth's own hard limit when it lacks
   * CAP_SYS_RESOURCE (it cannot raise it), undefined when it can set any.
   */
  nofileCeiling?: number;
  /** Default pids limit when `resources.pids` is not set (`DEFAULT_PIDS_LIMIT`); 0: none. */
  defaultPidsLimit?: number;
  /** Node's `process.arch` of the host, for the seccomp filter's architectures (default: this process's). */
  arch?: string;
  /** `[updates] lock_path`: where `<root>/locks/<name>` (the update lock) appears; absent: not mounted. */
  updateLockPath?: string;
}

/** The resolved process: what will run, as whom, where. Also used to check the command exists. */
export interface ResolvedProcess {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
}

export function buildSpec(input: SpecInput): OciSpec {
  const { spec, name } = input;
  const proc = resolveProcess(input);
  const caps = containerCapabilities(spec, input.availableCapabilities);
  // network host shares the host's network and, as Docker does, its hostname (UTS namespace);
  // network none gets a namespace of each, with the container name as hostname.
  const namespaces: { type: string; path?: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'mount' }];
  // On networks: the namespace berth made and netavark set up (src/network), not a fresh one.
  if (spec.network === 'none')
    namespaces.push({ type: 'uts' }, spec.networks?.length ? { type: 'network', path: netnsPath(input.root, name) } : { type: 'network' });

  const resources: OciSpec['linux']['resources'] = { devices: [{ allow: false, access: 'rwm' }] };
  const r = spec.resources ?? {};
  // swap == limit: no swap on top of the memory limit, so a memory hog is OOM-killed, not swapped.
  if (r.memoryBytes !== undefined) resources.memory = { limit: r.memoryBytes, swap: r.memoryBytes };
  if (r.cpus !== undefined) resources.cpu = { quota: Math.max(1000, Math.round(r.cpus * CPU_PERIOD_US)), period: CPU_PERIOD_US };
  const pids = r.pids ?? input.defaultPidsLimit ?? DEFAULT_PIDS_LIMIT;
  if (pids > 0) resources.pids = { limit: pids };

  const oci: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: proc.uid, gid: proc.gid, ...(proc.additionalGids.length ? { additionalGids: proc.additionalGids } : {}) },
      args: proc.args,
      env: proc.env,
      cwd: proc.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [nofileRlimit(input.nofileCeiling)],
      noNewPrivileges: true,
      // Explicit, so a task never inherits berth's (or its unit's) protective negative score.
      oomScoreAdj: 0,
    },
    root: { path: 'rootfs', readonly: spec.readOnlyRootfs },
    ...(spec.network === 'none' ? { hostname: name } : {}),
    mounts: [...defaultMounts(), ...hostNetworkMounts(input), ...userMounts(input), ...anonymousVolumeMounts(input), ...updateLockMount(input)],
    linux: {
      namespaces,
      cgroupsPath: `${input.cgroupParent ?? '/berth'}/${input.instance ?? name}`,
      resources,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      seccomp: seccompFilter(caps, input.arch ?? process.arch),
    },
  };
  return applyContainerOptions(oci, input);
}

/** The default NOFILE, its hard limit lowered to what the runtime can set (the soft one with it if need be). */
function nofileRlimit(ceiling: number | undefined): { type: string; hard: number; soft: number } {
  const hard = Math.min(DEFAULT_NOFILE.hard, ceiling ?? Infinity);
  return { type: 'RLIMIT_NOFILE', hard, soft: Math.min(DEFAULT_NOFILE.soft, hard) };
}

function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
}

function hostNetworkMounts(input: SpecInput): OciMount[] {
  if (input.spec.network !== 'host') return [];
  const f = input.hostNetworkFiles ?? {};
  const targets = new Set(input.spec.mounts.map((m) => m.target));
  const out: OciMount[] = [];
  // A user mount of the same target wins.
  if (f.resolvConf && !targets.has('/etc/resolv.conf'))
    out.push({ destination: '/etc/resolv.conf', type: 'bind', source: f.resolvConf, options: ['rbind', 'ro'] });
  if (f.hosts && !targets.has('/etc/hosts')) out.push({ destination: '/etc/hosts', type: 'bind', source: f.hosts, options: ['rbind', 'ro'] });
  return out;
}

/**
 * The update lock file, read-only (flock needs no write access). After the user's mounts, so a
 * tmpfs on /run does not hide it; a user mount of the same target wins.
 */
function updateLockMount(input: SpecInput): OciMount[] {
  const target = input.updateLockPath;
  if (!target || input.spec.mounts.some((m) => m.target === target)) return [];
  return [{ destination: target, type: 'bind', source: updateLockFile(input.root, input.name), options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] }];
}

/** The image's VOLUME paths no mount covers, each on a directory of the container's own (./anonymous-volumes.ts). */
function anonymousVolumeMounts(input: SpecInput): OciMount[] {
  return anonymousVolumes(input.image, input.spec.mounts, path.join(containersDir(input.root), input.instance ?? input.name)).map((v) => ({
    destination: v.target,
    type: 'bind',
    source: v.source,
    options: ['rbind', 'rw', 'nosuid', 'nodev'],
  }));
}

/** Where a named volume lives. Never removed implicitly. */
export function volumePath(root: string, volume: string): string {
  return path.join(root, 'volumes', volume);
}

function userMounts(input: SpecInput): OciMount[] {
  return input.spec.mounts.map((m): OciMount => {
    if (!path.posix.isAbsolute(m.target)) throw invalidArgument(`container ${input.name}: mount target "${m.target}" must be an absolute path`);
    switch (m.type) {
      case 'volume':
        if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(m.name)) throw invalidArgument(`container ${input.name}: volume name "${m.name}" is not valid`);
        // As Podman mounts volumes: a set-uid binary or device node one container leaves in a volume grants nothing.
        return { destination: m.target, type: 'bind', source: volumePath(input.root, m.name), options: ['rbind', m.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'] };
      case 'bind':
        if (!path.isAbsolute(m.source)) throw invalidArgument(`container ${input.name}: bind source "${m.source}" must be an absolute path`);
        return { destination: m.target, type: 'bind', source: m.source, options: ['rbind', m.readOnly ? 'ro' : 'rw'] };
      case 'secret':
        // From berth's tmpfs (src/secrets), read-only: the plaintext is never on disk, in or out of the container.
        return { destination: m.target, type: 'bind', source: secretPath(input.root, m.name, m.key), options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] };
      case 'tmpfs':
        return {
          destination: m.target,
          type: 'tmpfs',
          source: 'tmpfs',
          options: ['nosuid', 'nodev', 'mode=1777', ...(m.sizeBytes !== undefined ? [`size=${m.sizeBytes}`] : [])],
        };
    }
  });
}

/** Merge image config and spec into argv/env/cwd/user, Docker's way. Throws InvalidArgument. */
export function resolveProcess(input: SpecInput): ResolvedProcess {
  const { spec, name } = input;
  const img = input.image.config ?? {};
  const entrypoint = spec.command ?? img.Entrypoint ?? [];
  const cmd = spec.args ?? (spec.command ? [] : (img.Cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw invalidArgument(`container ${name}: no command: the image has no Entrypoint or Cmd and the spec sets neither command nor args`);

  const user = resolveUser(spec.user || img.User || '0', input.passwd, input.group, name);
  const env = new Map<string, string>();
  for (const kv of img.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const [k, v] of Object.entries(spec.env ?? {})) env.set(k, v);
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOME')) env.set('HOME', user.home ?? '/');
  const hostname = spec.hostname ?? (spec.network === 'none' ? name : undefined);
  if (!env.has('HOSTNAME') && hostname) env.set('HOSTNAME', hostname);

  const cwd = spec.workingDir || img.WorkingDir || '/';
  if (!path.posix.isAbsolute(cwd)) throw invalidArgument(`container ${name}: workingDir "${cwd}" must be an absolute path`);
  return {
    args,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd,
    uid: user.uid,
    gid: user.gid,
    additionalGids: [...new Set([...user.additionalGids, ...(spec.groupAdd ?? []).map((g) => groupAddId(g, input.group, name))])].filter((g) => g !== user.gid),
  };
}

/** A `groupAdd` entry: a number, or a name in the image's /etc/group (where Docker resolves it too). */
function groupAddId(g: string, group: string | undefined, container: string): number {
  if (isNumeric(g)) return Number(g);
  const entry = group === undefined ? undefined : parseGroup(group).find((e) => e.name === g);
  if (!entry) throw invalidArgument(`container ${container}: groupAdd: group "${g}" does not exist in the image's /etc/group`);
  return entry.gid;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) return [];
    const uid = Number(f[2]),
      gid = Number(f[3]);
    return Number.isInteger(uid) && Number.isInteger(gid) ? [{ name: f[0]!, uid, gid, home: f[5]! }] : [];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) return [];
    const gid = Number(f[2]);
    return Number.isInteger(gid) ? [{ name: f[0]!, gid, members: f[3]!.split(',').filter(Boolean) }] : [];
  });
}

const isNumeric = (s: string) => /^\d+$/.test(s);

/** `user[:group]` → ids. Names are looked up in the image's passwd/group; unknown names are errors. */
export function resolveUser(
  spec: string,
  passwd: string | undefined,
  group: string | undefined,
  container = '?',
): { uid: number; gid: number; additionalGids: number[]; home?: string } {
  const [u, g] = spec.split(':', 2) as [string, string | undefined];
  const users = passwd === undefined ? undefined : parsePasswd(passwd);
  const groups = group === undefined ? undefined : parseGroup(group);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNumeric(u)) {
    uid = Number(u);
    entry = users?.find((e) => e.uid === uid);
  } else {
    if (!users) throw invalidArgument(`container ${container}: user "${u}" cannot be resolved: the image has no /etc/passwd`);
    entry = users.find((e) => e.name === u);
    if (!entry) throw invalidArgument(`container ${container}: user "${u}" does not exist in the image's /etc/passwd`);
    uid = entry.uid;
  }
  let gid: number;
  if (g === undefined || g === '') {
    gid = entry?.gid ?? 0;
  } else if (isNumeric(g)) {
    gid = Number(g);
  } else {
    if (!groups) throw invalidArgument(`container ${container}: group "${g}" cannot be resolved: the image has no /etc/group`);
    const ge = groups.find((e) => e.name === g);
    if (!ge) throw invalidArgument(`container ${container}: group "${g}" does not exist in the image's /etc/group`);
    gid = ge.gid;
  }
  // Supplementary groups the user is listed in, as Docker does when no explicit group is given.
  const additionalGids =
    entry && groups && (g === undefined || g === '')
      ? [...new Set(groups.filter((e) => e.members.includes(entry!.name) && e.gid !== gid).map((e) => e.gid))]
      : [];
  return { uid, gid, additionalGids, home: entry?.home };
}

/** The executable argv[0] names, searched like execvp in the image: absolute, relative to cwd, or on PATH. */
export function executableCandidates(proc: ResolvedProcess): string[] {
  const argv0 = proc.args[0]!;
  if (argv0.includes('/')) return [path.posix.resolve(proc.cwd, argv0)];
  const pathVar = proc.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  return pathVar
    .split(':')
    .filter(Boolean)
    .map((d) => path.posix.join(path.posix.resolve(proc.cwd, d), argv0));
}
