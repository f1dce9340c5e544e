/**
 * The OCI spec for a container's host-access and process options (issue 11: devices, capabilities,
 * privileged, init, hostname, extra hosts, DNS, sysctls, ulimits, /dev/shm size, labels; extra
 * groups are resolved with the user, in spec.ts), applied on top of the spec buildSpec makes from
 * the defaults. Pure, like buildSpec: what comes from the host (device numbers, capabilities, the
 * init binary, generated /etc files) is input. Docker's and the OCI spec's meanings throughout.
 */
import { failedPrecondition } from '../errors.ts';
import { CAPABILITIES } from '../oci/capabilities.ts';
import type { ContainerSpec } from '../manifest/types.ts';
import { parseDeviceCgroupRule, type ContainerDevice } from './devices.ts';
import type { EtcFiles } from './etc-files.ts';
import type { OciSpec, SpecInput } from './spec.ts';

/** Docker's default capabilities (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Where the init binary appears: on the tmpfs runc makes for /dev, so nothing is written to the rootfs. */
export const INIT_PATH = '/dev/init';

/** What the host contributes to the options; the runtime looks these up when it creates a container. */
export interface HostOptionInputs {
  /** Capabilities berth itself holds (its bounding set): `ALL` and `privileged` mean these. Default: every one. */
  availableCapabilities?: readonly string[];
  /** The spec's `devices` as found on the host (resolveDevices). */
  devices?: ContainerDevice[];
  /** Every host device, for a privileged container (hostDevices). */
  hostDevices?: ContainerDevice[];
  /** A static init (tini) on the host, for `init: true`. */
  initBinary?: string;
  /** Host paths of the /etc files written for this container (etc-files.ts). */
  etcFilePaths?: { [K in keyof EtcFiles]?: string };
}

/**
 * The capability set, Docker's way: privileged or capAdd ALL start from every capability, capDrop
 * ALL from none, anything else from Docker's defaults; then drops, then adds.
 */
export function containerCapabilities(spec: ContainerSpec, available?: readonly string[]): string[] {
  const all = available ? CAPABILITIES.filter((c) => available.includes(c)) : [...CAPABILITIES];
  const add = spec.capAdd ?? [];
  const drop = spec.capDrop ?? [];
  let caps: string[];
  if (spec.privileged || add.includes('ALL')) caps = [...all];
  else if (drop.includes('ALL')) caps = [];
  else caps = [...DEFAULT_CAPABILITIES];
  if (!drop.includes('ALL')) caps = caps.filter((c) => !drop.includes(c));
  for (const c of add) if (c !== 'ALL' && !caps.includes(c)) caps.push(c);
  return caps;
}

/** Applies the options to `oci` (built by buildSpec from `input`) and returns it. Throws InvalidArgument, FailedPrecondition. */
export function applyContainerOptions(oci: OciSpec, input: SpecInput & HostOptionInputs): OciSpec {
  const { spec, name } = input;
  const linux = oci.linux;
  const userTargets = new Set(spec.mounts.map((m) => m.target));
  // What berth cannot hold itself it cannot give: say so here rather than let runc fail every start.
  const available = input.availableCapabilities;
  const unavailable = (spec.capAdd ?? []).filter((c) => c !== 'ALL' && available && !available.includes(c));
  if (unavailable.length)
    throw failedPrecondition(`container ${name}: capAdd: berth does not hold ${unavailable.join(', ')} on this host, so it cannot give it`);
  const nofile = spec.ulimits?.nofile;
  if (nofile && input.nofileCeiling !== undefined && nofile.hard > input.nofileCeiling) {
    throw failedPrecondition(
      `container ${name}: ulimits.nofile: hard limit ${nofile.hard} is above berth's own, ${input.nofileCeiling}, which it cannot raise without CAP_SYS_RESOURCE`,
    );
  }

  if (spec.privileged) {
    delete linux.seccomp;
    linux.maskedPaths = [];
    linux.readonlyPaths = [];
    linux.resources.devices = [{ allow: true, access: 'rwm' }];
    const sys = oci.mounts.find((m) => m.destination === '/sys');
    if (sys) sys.options = sys.options.map((o) => (o === 'ro' ? 'rw' : o));
    addDevices(oci, input.hostDevices ?? []);
  }
  addDevices(oci, input.devices ?? []);
  for (const rule of spec.deviceCgroupRules ?? []) linux.resources.devices.push(parseDeviceCgroupRule(rule));

  if (spec.init) {
    if (!input.initBinary)
      throw failedPrecondition(`container ${name}: init: true needs a static init binary on the host (apt-get install tini, for /usr/bin/tini-static)`);
    oci.process.args = [INIT_PATH, '--', ...oci.process.args];
    oci.mounts.push({ destination: INIT_PATH, type: 'bind', source: input.initBinary, options: ['bind', 'ro'] });
  }

  if (spec.hostname) {
    // A hostname of its own needs a UTS namespace of its own, with network: host too (as Podman's --uts=private).
    oci.hostname = spec.hostname;
    if (!linux.namespaces.some((n) => n.type === 'uts')) linux.namespaces.push({ type: 'uts' });
  }
  const etc: [keyof EtcFiles, string][] = [
    ['hostname', '/etc/hostname'],
    ['hosts', '/etc/hosts'],
    ['resolvConf', '/etc/resolv.conf'],
  ];
  for (const [file, target] of etc) {
    const source = input.etcFilePaths?.[file];
    if (!source || userTargets.has(target)) continue; // a user mount of the same target wins
    oci.mounts = oci.mounts.filter((m) => m.destination !== target);
    oci.mounts.push({ destination: target, type: 'bind', source, options: ['rbind', 'ro'] });
  }

  if (spec.sysctls && Object.keys(spec.sysctls).length) linux.sysctl = { ...spec.sysctls };
  for (const [limit, { soft, hard }] of Object.entries(spec.ulimits ?? {})) {
    const type = `RLIMIT_${limit.toUpperCase()}`;
    oci.process.rlimits = [...oci.process.rlimits.filter((r) => r.type !== type), { type, soft, hard }];
  }
  if (spec.shmSizeBytes !== undefined) {
    const shm = oci.mounts.find((m) => m.destination === '/dev/shm');
    if (shm) shm.options = [...shm.options.filter((o) => !o.startsWith('size=')), `size=${spec.shmSizeBytes}`];
  }
  if (spec.tty) oci.process.terminal = true;
  if (spec.labels && Object.keys(spec.labels).length) oci.annotations = { ...oci.annotations, ...spec.labels };
  return oci;
}

function addDevices(oci: OciSpec, devices: ContainerDevice[]): void {
  if (devices.length === 0) return;
  const byPath = new Map((oci.linux.devices ?? []).map((d) => [d.path, d] as const));
  for (const d of devices) {
    byPath.set(d.path, { path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid });
    oci.linux.resources.devices.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.access });
  }
  oci.linux.devices = [...byPath.values()];
}
