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
  | { type: 'tmpfs'; target: string; sizeBytes?: number };

export interface ResourceSpec {
  memoryBytes?: number;
  /** CPUs, e.g. 0.5 */
  cpus?: number;
  pids?: number;
}

export interface ContainerSpec {
  /** An image reference, or the name of an `Image` object (resolved by the loader into `imageRef`). */
  image: string;
  command?: string[]; // replaces the image's Entrypoint
  args?: string[]; // replaces the image's Cmd
  env: Record<string, string>;
  workingDir?: string;
  user?: string; // "uid[:gid]" or names resolved from the image's /etc/passwd and /etc/group
  restartPolicy: RestartPolicy;
  network: 'host' | 'none';
  mounts: MountSpec[];
  resources: ResourceSpec;
  readOnlyRootfs: boolean;
  stopSignal: string; // always with the SIG prefix, e.g. SIGTERM
  stopGracePeriodMs: number;
  dependsOn: string[];
}

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
};
export type ImageDoc = Doc<'Image', ImageSpec>;
export type VolumeDoc = Doc<'Volume', VolumeSpec>;
export type Document = ContainerDoc | ImageDoc | VolumeDoc;

export interface DesiredState {
  containers: ContainerDoc[];
  images: ImageDoc[];
  volumes: VolumeDoc[];
  /** git commit of the manifests directory, if it is in a git work tree */
  revision?: string;
}
