/**
 * The desired state as berth's YAML describes it, after validation and with defaults applied.
 * Kubernetes-style documents: `apiVersion: berth.dev/v1alpha1`, `kind`, `metadata`, `spec`.
 */
import type { Place } from '../errors.ts';

export const API_VERSION = 'berth.dev/v1alpha1';

export interface ObjectMeta {
  name: string;
  labels: Record<string, string>;
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';
export type PullPolicy = 'IfNotPresent' | 'Always';

export type MountSpec =
  | { type: 'volume'; name: string; target: string; readOnly: boolean }
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes?: number }
  /** A `Secret` read-only from berth's tmpfs: one key as a file, or (no `key`) a directory of a file per key. */
  | { type: 'secret'; name: string; key?: string; target: string };

/** `envFrom` entry: every key of the `Secret` becomes an environment variable of that name. */
export interface EnvFromSpec {
  secret: string;
}

export interface ResourceSpec {
  memoryBytes?: number;
  /** CPUs, e.g. 0.5 */
  cpus?: number;
  pids?: number;
}

/** A host device given to a container (Compose `devices`): created at `target`, allowed in its device cgroup. */
export interface DeviceSpec {
  /** The device node on the host. */
  path: string;
  /** Where it appears in the container (default: the same path). */
  target: string;
  /** Device cgroup access: some of r (read), w (write), m (mknod); default rwm. */
  permissions: string;
}

/** A resource limit (Compose `ulimits`): `nofile: 4096` means soft = hard = 4096. */
export interface UlimitSpec {
  soft: number;
  hard: number;
}

/**
 * What a container may reach on the host and how its process is set up (issue 11), with Compose's
 * and the OCI spec's names and meanings. Every field is optional and absent when it says nothing
 * beyond the default (false, empty), so a spec without them normalises, and hashes, as before.
 */
export interface ContainerOptions {
  devices?: DeviceSpec[];
  /** Device cgroup rules as Docker writes them: `c 188:* rmw`. */
  deviceCgroupRules?: string[];
  /** Capability names with the CAP_ prefix, upper case; `ALL` for every capability. */
  capAdd?: string[];
  capDrop?: string[];
  /** Every capability and device, no seccomp filter, /sys writable: only when true. */
  privileged?: boolean;
  /** A tiny init (tini) as PID 1 that reaps zombies and forwards signals: only when true. */
  init?: boolean;
  hostname?: string;
  /** `host:ip` lines added to /etc/hosts. */
  extraHosts?: string[];
  /** Name server addresses for /etc/resolv.conf. */
  dns?: string[];
  sysctls?: Record<string, string>;
  /** By name without the RLIMIT_ prefix, lower case: `nofile`, `nproc`, `core`… */
  ulimits?: Record<string, UlimitSpec>;
  /** Size of /dev/shm (default 64 MiB). */
  shmSizeBytes?: number;
  /** Supplementary groups of the process: names from the image's /etc/group, or numbers. */
  groupAdd?: string[];
  /** Container labels: recorded in the bundle's annotations, shown by inspect. */
  labels?: Record<string, string>;
  /** A terminal for the process (its output, logged, then has a terminal's line endings): only when true. */
  tty?: boolean;
}

export interface ContainerSpec extends ContainerOptions {
  /** An image reference, or the name of an `Image` object (resolved by the loader into `imageRef`). */
  image: string;
  command?: string[]; // replaces the image's Entrypoint
  args?: string[]; // replaces the image's Cmd
  env: Record<string, string>;
  /** Secrets whose keys become env (decrypted on the device only; src/secrets). */
  envFrom?: EnvFromSpec[];
  workingDir?: string;
  user?: string; // "uid[:gid]" or names resolved from the image's /etc/passwd and /etc/group
  restartPolicy: RestartPolicy;
  network: 'host' | 'none';
  mounts: MountSpec[];
  resources: ResourceSpec;
  readOnlyRootfs: boolean;
  stopSignal: string; // always with the SIG prefix, e.g. SIGTERM
  /** The manifest named no stopSignal (the one above is the default): the image's StopSignal wins, as in Docker. */
  stopSignalDefaulted?: boolean;
  stopGracePeriodMs: number;
  dependsOn: string[];
  /** Those of `dependsOn` that must also be healthy (condition: Healthy) before this one starts. */
  dependsOnHealthy?: string[];
  /** The probe berth runs; absent: the image's HEALTHCHECK, if any (Docker's rules). */
  healthcheck?: HealthcheckSpec;
  /** How a change is rolled out; absent: download-then-kill, confirmed after 5 s. */
  update?: UpdateSpec;
  /** The networks it joins (then `network` is `none`: a namespace of its own, joined to them). */
  networks?: NetworkAttachmentSpec[];
  /** Host ports forwarded to it (Compose `ports`); a container with ports and no networks joins `berth`. */
  ports?: PortSpec[];
}

/** A container on a network: its name and `aliases` resolve to its address there. */
export interface NetworkAttachmentSpec {
  name: string;
  aliases: string[];
}

/** A published port (Compose's short syntax): `[hostIp:]hostPort:containerPort[/protocol]`, ranges as `range` ports. */
export interface PortSpec {
  /** Absent: every host address. */
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  /** How many consecutive ports from hostPort and containerPort (1 for one port). */
  range: number;
}

/** A private network: a bridge with this subnet, name resolution between its containers, NAT to the outside unless internal. */
export interface NetworkSpec {
  driver: 'bridge';
  /** IPv4 CIDR; the first address is the gateway (and the DNS server), containers get the next ones. */
  subnet: string;
  /** No route out of the subnet (no NAT): its containers reach each other only. */
  internal: boolean;
}

/** The network containers join when they publish ports without naming one; a Network document named so overrides it. */
export const DEFAULT_NETWORK = 'berth';
export const DEFAULT_NETWORK_SPEC: NetworkSpec = { driver: 'bridge', subnet: '10.89.0.0/24', internal: false };

export interface HealthcheckSpec {
  exec?: string[];
  http?: { port: number; path: string; host: string };
  tcp?: { port: number; host: string };
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/**
 * - `download-then-kill` (default): the new image is pulled, unpacked and checked, then the old
 *   container is stopped and the new one started;
 * - `start-first`: the new container starts beside the old one, which is stopped only once the new
 *   one is ready (healthy, with a check): no downtime, for containers that hold no port or lock;
 * - `kill-then-download`: the old container (not kept for a rollback) is removed before the new
 *   image is pulled, so a disk too small for both images can still be updated.
 */
export type UpdateStrategy = 'download-then-kill' | 'start-first' | 'kill-then-download';

export interface UpdateSpec {
  strategy: UpdateStrategy;
  /** How long a new container must run (and be healthy) before its change is confirmed. */
  confirmAfterMs: number;
}

export const DEFAULT_CONFIRM_AFTER_MS = 5_000;

export interface ImageSpec {
  /** Normalised Docker-style: `busybox` → `docker.io/library/busybox:latest`. */
  ref: string;
  platform?: string; // os/arch[/variant], normalised (`arm64` → `linux/arm64`)
  pullPolicy: PullPolicy;
}

/**
 * A named volume: a directory under <root>/volumes/<name> that outlives its containers. Mounting a
 * volume that no `Volume` document declares is an error (unlike Docker, which creates it): a typo
 * must not silently give an app an empty data directory. Nothing to configure yet.
 */
export type VolumeSpec = Record<string, never>;

/**
 * Values encrypted to the device's age key (src/secrets): key → the age file, ASCII-armored. Only
 * the ciphertext is ever in the desired state; berth decrypts on the device, into a tmpfs.
 */
export interface SecretSpec {
  data: Record<string, string>;
}

interface Doc<K extends string, S> {
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  /** Where the document starts, for error messages and `status`. */
  place: Place;
}

export type ContainerDoc = Doc<'Container', ContainerSpec> & {
  /** The normalised image reference the container runs (an Image object's ref, or `spec.image`). */
  imageRef: string;
  /** The `Image` object `spec.image` named, if it named one. */
  imageName?: string;
  /** Resolved by the loader: the spec of each network in `spec.networks`. */
  networkSpecs?: Record<string, NetworkSpec>;
  /** Resolved by the loader: the digest of each secret's ciphertext it uses (a new ciphertext recreates it). */
  secretDigests?: Record<string, string>;
};
export type ImageDoc = Doc<'Image', ImageSpec>;
export type VolumeDoc = Doc<'Volume', VolumeSpec>;
export type NetworkDoc = Doc<'Network', NetworkSpec>;
export type SecretDoc = Doc<'Secret', SecretSpec>;
export type Document = ContainerDoc | ImageDoc | VolumeDoc | NetworkDoc | SecretDoc;

export interface DesiredState {
  containers: ContainerDoc[];
  images: ImageDoc[];
  volumes: VolumeDoc[];
  /** Declared networks (the default `berth` network is not listed unless declared). */
  networks?: NetworkDoc[];
  /** Declared secrets, ciphertext only (absent when none, so older desired states read the same). */
  secrets?: SecretDoc[];
  /** git commit of the manifests directory, if it is in a git work tree */
  revision?: string;
  /**
   * Set by the reconciler, not the loader: the digest each `pullPolicy: Always` tag points to (as
   * the registry last said, else as present). A moved tag is thus a new desired state, which is
   * rolled out, confirmed or rolled back like a manifest change, and never retried once rejected.
   */
  imagePins?: Record<string, string>;
}
