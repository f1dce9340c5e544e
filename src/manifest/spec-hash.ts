/**
 * Change detection: a container is recreated exactly when the hash of its normalised spec plus its
 * image's manifest digest changes. Normalising first means a change that does not matter (key
 * order, a default written out, `64Mi` instead of `67108864`, `TERM` instead of `SIGTERM`, mounts
 * listed in another order) gives the same hash; any change that reaches the runtime bundle does not.
 *
 * The host-access options (devices, capabilities, init…: container-options.ts) are in it when set,
 * and absent when they say nothing beyond the default, so older specs keep their hash.
 *
 * `restartPolicy` and `dependsOn` are left out on purpose: they are berth's own decisions (when to
 * restart, in which order to start), applied without recreating the container.
 */
import { createHash } from 'node:crypto';
import { normaliseContainerOptions } from './container-options.ts';
import type { ContainerDoc, ContainerOptions, EnvFromSpec, MountSpec, NetworkAttachmentSpec, NetworkSpec, PortSpec, ResourceSpec } from './types.ts';

/** What the runtime bundle is made from; stored with the container so a later plan can diff it. */
export interface NormalisedContainerSpec extends ContainerOptions {
  /** The normalised image reference (not the `Image` object's name: renaming one changes nothing). */
  image: string;
  command?: string[];
  args?: string[];
  env: Record<string, string>;
  workingDir?: string;
  user?: string;
  network: 'host' | 'none';
  /** Sorted by target, so a parent directory is mounted before what is mounted inside it. */
  mounts: MountSpec[];
  resources: ResourceSpec;
  readOnlyRootfs: boolean;
  stopSignal: string;
  stopGracePeriodMs: number;
  /** Only when the container joins networks, so older specs keep their hash; with each network's spec, so a new subnet recreates it. */
  networks?: (NetworkAttachmentSpec & Partial<NetworkSpec>)[];
  ports?: PortSpec[];
  envFrom?: EnvFromSpec[];
  /** Only when it uses secrets: the digest of each one's ciphertext, so a new ciphertext recreates it. */
  secrets?: Record<string, string>;
}

/** The normalised spec of a loaded container document. */
export function normaliseContainerSpec(doc: ContainerDoc): NormalisedContainerSpec {
  const s = doc.spec;
  const out: NormalisedContainerSpec = {
    image: doc.imageRef,
    env: { ...s.env },
    network: s.network,
    mounts: s.mounts.map((m) => ({ ...m })).sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0)),
    resources: { ...s.resources },
    readOnlyRootfs: s.readOnlyRootfs,
    stopSignal: s.stopSignal.startsWith('SIG') ? s.stopSignal : `SIG${s.stopSignal}`,
    stopGracePeriodMs: s.stopGracePeriodMs,
  };
  if (s.command !== undefined) out.command = [...s.command];
  if (s.args !== undefined) out.args = [...s.args];
  if (s.workingDir !== undefined) out.workingDir = s.workingDir;
  if (s.user !== undefined) out.user = s.user;
  if (s.networks !== undefined) out.networks = s.networks.map((n) => ({ name: n.name, aliases: [...n.aliases], ...doc.networkSpecs?.[n.name] }));
  if (s.ports !== undefined) out.ports = s.ports.map((p) => ({ ...p }));
  if (s.envFrom?.length) out.envFrom = s.envFrom.map((e) => ({ ...e }));
  if (doc.secretDigests) out.secrets = { ...doc.secretDigests };
  Object.assign(out, normaliseContainerOptions(s));
  return out;
}

/** `sha256:<hex>` of the normalised spec and the image manifest digest. */
export function specHash(spec: NormalisedContainerSpec, imageDigest: string): string {
  const h = createHash('sha256');
  h.update(canonicalJson({ v: 1, spec, imageDigest }));
  return `sha256:${h.digest('hex')}`;
}

/** The hash of a loaded container document run from the image with `imageDigest`. */
export function containerSpecHash(doc: ContainerDoc, imageDigest: string): string {
  return specHash(normaliseContainerSpec(doc), imageDigest);
}

/** JSON with object keys sorted at every level and undefined members left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return value === undefined ? 'null' : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}
