/**
 * The Container fields that give a container host access or shape its process (issue 11): devices,
 * capabilities, privileged, init, hostname, extra hosts, DNS, sysctls, ulimits, /dev/shm size,
 * extra groups, labels. The JSON Schema has checked their shapes; this turns them into
 * `ContainerOptions` (normalised: CAP_ names, sizes in bytes, defaults left out) and reports what a
 * schema cannot say, each at its path: unknown capabilities, a capability both added and dropped,
 * a sysctl that would change the host, an address that is not one, two devices on one target.
 */
import { isIP } from 'node:net';
import { parseSize } from '../config/units.ts';
import { BerthError } from '../errors.ts';
import { normaliseCapability } from '../oci/capabilities.ts';
import { formatDocPath } from './schema.ts';
import type { DocPath } from './source.ts';
import type { ContainerOptions, DeviceSpec, UlimitSpec } from './types.ts';

export type ReportAt = (path: DocPath, message: string) => void;

/** Docker's /dev/shm size; a spec that writes it out means the same as one that leaves it out. */
export const DEFAULT_SHM_SIZE_BYTES = 64 * 1024 * 1024;

/**
 * Sysctls that belong to a namespace the container has of its own (Docker's rule, runc's check):
 * IPC ones always, `net.*` only with `network: none` (with `host` they would change the host's).
 */
const IPC_SYSCTLS = [
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
];

/** Builds the options of a schema-valid container spec; problems go to `report`, at their path. */
export function buildContainerOptions(spec: Record<string, any>, network: 'host' | 'none', report: ReportAt): ContainerOptions {
  const out: ContainerOptions = {};
  const devices = (spec.devices ?? []).map((d: unknown, i: number) => parseDevice(d, ['spec', 'devices', i], report));
  const targets = new Map<string, number>();
  devices.forEach((d: DeviceSpec | undefined, i: number) => {
    if (!d) return;
    const first = targets.get(d.target);
    if (first !== undefined) report(['spec', 'devices', i], `spec.devices[${i}]: ${d.target} is already the target of devices[${first}]`);
    else targets.set(d.target, i);
  });
  if (devices.length > 0) out.devices = devices.filter(Boolean);
  if (spec.deviceCgroupRules?.length) out.deviceCgroupRules = [...spec.deviceCgroupRules];

  const capAdd = capabilityList(spec.capAdd, 'capAdd', report);
  const capDrop = capabilityList(spec.capDrop, 'capDrop', report);
  (spec.capAdd ?? []).forEach((raw: string, i: number) => {
    const c = normaliseCapability(raw);
    if (c && (c === 'ALL' ? capDrop.includes('ALL') : capDrop.includes(c))) report(['spec', 'capAdd', i], `spec.capAdd: ${c} is also in capDrop`);
  });
  if (capAdd.length > 0) out.capAdd = capAdd;
  if (capDrop.length > 0) out.capDrop = capDrop;
  if (spec.privileged === true) out.privileged = true;
  if (spec.init === true) out.init = true;
  if (spec.hostname !== undefined) out.hostname = spec.hostname;

  const extraHosts = (spec.extraHosts ?? []).map((h: string, i: number) => {
    // Compose writes host:ip (split at the first colon, so an IPv6 address keeps its own) or host=ip.
    const sep = /[:=]/.exec(h)!.index;
    const [host, ip] = [h.slice(0, sep), h.slice(sep + 1).replace(/^\[(.*)\]$/, '$1')];
    if (!isIP(ip)) report(['spec', 'extraHosts', i], `spec.extraHosts[${i}]: "${ip}" is not an IP address (write host:ip, e.g. broker.local:192.168.1.10)`);
    return `${host}:${ip}`;
  });
  if (extraHosts.length > 0) out.extraHosts = extraHosts;
  (spec.dns ?? []).forEach((a: string, i: number) => {
    if (!isIP(a)) report(['spec', 'dns', i], `spec.dns[${i}]: "${a}" is not an IP address`);
  });
  if (spec.dns?.length) out.dns = [...spec.dns];

  const sysctls: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.sysctls ?? {})) {
    sysctls[k] = String(v);
    if (k.startsWith('net.')) {
      if (network !== 'none')
        report(['spec', 'sysctls', k], `spec.sysctls: ${k} would change the host's network settings (network: host); it needs network: none`);
    } else if (!IPC_SYSCTLS.includes(k) && !k.startsWith('fs.mqueue.')) {
      report(
        ['spec', 'sysctls', k],
        `spec.sysctls: ${k} is not namespaced: setting it would change the host (allowed: net.*, fs.mqueue.*, ${IPC_SYSCTLS.join(', ')})`,
      );
    }
  }
  if (Object.keys(sysctls).length > 0) out.sysctls = sysctls;

  const ulimits: Record<string, UlimitSpec> = {};
  for (const [k, v] of Object.entries(spec.ulimits ?? {})) {
    const u: UlimitSpec = typeof v === 'number' ? { soft: v, hard: v } : { soft: (v as UlimitSpec).soft, hard: (v as UlimitSpec).hard };
    if (u.soft > u.hard) report(['spec', 'ulimits', k, 'soft'], `spec.ulimits.${k}: soft limit ${u.soft} is above the hard limit ${u.hard}`);
    ulimits[k] = u;
  }
  if (Object.keys(ulimits).length > 0) out.ulimits = ulimits;

  if (spec.shmSize !== undefined) {
    try {
      const bytes = parseSize(spec.shmSize, 'spec.shmSize');
      if (bytes !== DEFAULT_SHM_SIZE_BYTES) out.shmSizeBytes = bytes;
    } catch (err) {
      if (!(err instanceof BerthError)) throw err;
      report(['spec', 'shmSize'], err.message);
    }
  }
  if (spec.groupAdd?.length) out.groupAdd = [...new Set<string>(spec.groupAdd.map(String))];
  if (spec.labels && Object.keys(spec.labels).length > 0) out.labels = { ...spec.labels };
  if (spec.tty === true) out.tty = true;
  return out;
}

/** `/dev/ttyUSB0`, `/dev/ttyUSB0:/dev/serial:rw` (Compose's short form) or `{path, target, permissions}`. */
function parseDevice(d: unknown, at: DocPath, report: ReportAt): DeviceSpec | undefined {
  let path: string, target: string | undefined, permissions: string | undefined;
  if (typeof d === 'string') {
    const parts = d.split(':');
    if (parts.length > 3) {
      report(at, `${formatDocPath(at)}: "${d}" is not host[:container[:permissions]]`);
      return undefined;
    }
    [path, target, permissions] = parts as [string, string | undefined, string | undefined];
    // host:permissions, as Docker also reads `--device /dev/sda:rw`.
    if (target !== undefined && permissions === undefined && /^[rwm]+$/.test(target)) [target, permissions] = [undefined, target];
  } else {
    ({ path, target, permissions } = d as { path: string; target?: string; permissions?: string });
  }
  target ??= path;
  permissions ??= 'rwm';
  let ok = true;
  for (const [p, what] of [
    [path, 'host path'],
    [target, 'target'],
  ] as const) {
    if (!p.startsWith('/')) {
      report(at, `${formatDocPath(at)}: the ${what} "${p}" must be an absolute path`);
      ok = false;
    }
  }
  if (!/^[rwm]{1,3}$/.test(permissions) || new Set(permissions).size !== permissions.length) {
    report(at, `${formatDocPath(at)}: permissions "${permissions}" must be some of r, w, m (read, write, mknod)`);
    ok = false;
  }
  // Sorted so rw and wr mean the same spec.
  return ok ? { path, target, permissions: [...permissions].sort((a, b) => 'rwm'.indexOf(a) - 'rwm'.indexOf(b)).join('') } : undefined;
}

function capabilityList(list: string[] | undefined, field: string, report: ReportAt): string[] {
  const out: string[] = [];
  (list ?? []).forEach((c, i) => {
    const name = normaliseCapability(c);
    if (!name) report(['spec', field, i], `spec.${field}[${i}]: "${c}" is not a Linux capability (e.g. NET_ADMIN, SYS_TIME, or ALL)`);
    else if (!out.includes(name)) out.push(name);
  });
  return out.sort();
}

/**
 * The options as they enter the spec hash: only what differs from the default (so a spec without
 * them, or with `privileged: false` written out, hashes as before), and lists whose order means
 * nothing sorted. `extraHosts` and `dns` keep their order: the first entry wins.
 */
export function normaliseContainerOptions(o: ContainerOptions): ContainerOptions {
  const out: ContainerOptions = {};
  const byTarget = (a: DeviceSpec, b: DeviceSpec) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0);
  if (o.devices?.length) out.devices = o.devices.map((d) => ({ ...d })).sort(byTarget);
  if (o.deviceCgroupRules?.length) out.deviceCgroupRules = [...new Set(o.deviceCgroupRules)].sort();
  if (o.capAdd?.length) out.capAdd = [...new Set(o.capAdd)].sort();
  if (o.capDrop?.length) out.capDrop = [...new Set(o.capDrop)].sort();
  if (o.privileged) out.privileged = true;
  if (o.init) out.init = true;
  if (o.hostname !== undefined) out.hostname = o.hostname;
  if (o.extraHosts?.length) out.extraHosts = [...o.extraHosts];
  if (o.dns?.length) out.dns = [...o.dns];
  if (o.sysctls && Object.keys(o.sysctls).length) out.sysctls = { ...o.sysctls };
  if (o.ulimits && Object.keys(o.ulimits).length) out.ulimits = Object.fromEntries(Object.entries(o.ulimits).map(([k, v]) => [k, { ...v }]));
  if (o.shmSizeBytes !== undefined && o.shmSizeBytes !== DEFAULT_SHM_SIZE_BYTES) out.shmSizeBytes = o.shmSizeBytes;
  if (o.groupAdd?.length) out.groupAdd = [...new Set(o.groupAdd)].sort();
  if (o.labels && Object.keys(o.labels).length) out.labels = { ...o.labels };
  if (o.tty) out.tty = true;
  return out;
}
