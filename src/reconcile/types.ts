/**
 * What plan() compares: the ACTUAL state observe() reads from the content store, the snapshotter,
 * the metadata and runc, and the STEPS that bring it to the desired state. Both are plain data, so
 * plan() stays a pure function tested with tables, and a Step can be printed, logged or stored.
 */
import type { ContainerDoc } from '../manifest/types.ts';
import type { NormalisedContainerSpec } from '../manifest/spec-hash.ts';

/** An image berth has a record of, by its normalised reference. */
export interface ActualImage {
  /** Normalised reference, e.g. `docker.io/library/busybox:latest` (the image record's name). */
  ref: string;
  /** What the reference resolved to when pulled: an index or a manifest digest. */
  targetDigest: string;
  /** The platform-specific manifest chosen: what containers record as their `imageDigest`. */
  manifestDigest: string;
  /** Manifest, config and every layer blob are in the content store (and intact, if checked). */
  blobsPresent: boolean;
  /** Every layer's snapshot is committed. */
  unpacked: boolean;
  /**
   * The image record says it was unpacked (into the current snapshotter) before: false for an image
   * imported or fetched with --no-unpack; when `unpacked` is false but this is true, snapshots were lost.
   */
  unpackedBefore?: boolean;
  /**
   * Blobs on disk whose size or digest is wrong (found by observe's blob check): the pull deletes
   * them before fetching them again, since a present blob is otherwise never fetched.
   */
  corruptBlobs?: string[];
  /** `os/arch[/variant]` of the manifest chosen, as the image record has it. */
  platform?: string;
  /**
   * What the registry says the reference points to now (an index or manifest digest), when observe
   * asked it: only for `pullPolicy: Always` images whose registry is reachable. Undefined = not asked.
   */
  remoteDigest?: string;
}

/**
 * A container's task, as runc and the supervisor tell it:
 * - `running`: the task runs;
 * - `exited`: the task ended (exit code known, or not if the supervisor died with it);
 * - `created`: the container exists (bundle and writable snapshot) but no task was started;
 * - `absent`: berth's record exists, but the container itself (bundle or writable snapshot) was
 *   removed behind berth's back: it must be created again.
 */
export type TaskState = 'running' | 'exited' | 'created' | 'absent';

/** A container berth manages (has a record of). Times are milliseconds since the epoch. */
export interface ActualContainer {
  name: string;
  /** The hash recorded when it was created: `specHash(normalised spec, imageDigest)`. */
  specHash: string;
  /** The normalised image reference it was created from. */
  imageRef: string;
  /** The image manifest digest it was created from. */
  imageDigest: string;
  /** The normalised spec recorded when it was created, to explain what a recreate changes. */
  appliedSpec?: NormalisedContainerSpec;
  state: TaskState;
  /** Why an `absent` container is missing, when berth knows (it removed it to repair its layers). */
  absentReason?: string;
  exitCode?: number;
  /** The kernel's OOM killer ended the task (the memory limit was hit). */
  oomKilled?: boolean;
  /** The supervisor vanished with the task and recorded no exit (the machine rebooted): restart at once. */
  exitLost?: boolean;
  /** Short-lived restarts in a row, for the back-off (the runtime records it; reset after 10 min up; plan sets the next value in its step). */
  backoffStreak: number;
  startedAt?: number;
  finishedAt?: number;
  /** The task runs but its health check says unhealthy, since then (ms since the epoch). */
  unhealthySince?: number;
  /** The running task's health, when it has a check (starting until its probes pass). */
  health?: 'starting' | 'healthy' | 'unhealthy';
}

/** On a container record whose container berth itself removed to repair it: why (for plan's reason). */
export const ABSENT_REASON_LABEL = 'berth.dev/absent-reason';

export interface ActualState {
  images: ActualImage[];
  containers: ActualContainer[];
  /** Names of the named volumes that exist. */
  volumes: string[];
  /** Registry hosts (`docker.io`, `127.0.0.1:5000`) known to be unreachable right now. */
  unreachableRegistries: string[];
  /**
   * Image records an older generation asked for that neither this desired state nor the
   * generation before it wants, and no container runs (reconcile/prune-images): garbage to collect.
   */
  retiredImages?: string[];
  /**
   * Containers an unconfirmed rollout replaced, kept stopped with their writable layers: a plan
   * that wants one back exactly as it was (same spec hash) restores it instead of making it anew.
   */
  retiredContainers?: RetiredContainerView[];
  /**
   * Running containers that may not be stopped for an update now (the update window is closed, or
   * the app holds its update lock), with the reason and when that may change. Crash restarts and
   * new containers are never held.
   */
  updateHolds?: Record<string, { reason: string; until?: number }>;
  /**
   * Desired containers that publish a host port something else holds now (a host process, or the
   * container named): their create or recreate is blocked, and the old version keeps running.
   */
  portsHeld?: Record<string, { reason: string; container?: string }>;
  /**
   * Secrets the desired containers use that this device cannot decrypt, by name, with the place and
   * why: the containers that use one wait; the rest of the set applies.
   */
  secretProblems?: Record<string, string>;
}

export interface RetiredContainerView {
  name: string;
  specHash: string;
  imageDigest: string;
}

// ------------------------------------------------------------------------------------------ steps

interface StepBase {
  /**
   * Stable across plans for the same work: `pull:<ref>`, `volume:<name>`, `container:<name>` (the
   * one create, start or recreate of a container), `remove:<name>`, `gc`, `wait:image:<name>`, `wait:container:<name>`.
   */
  id: string;
  /** Ids of steps in the same plan that must finish (successfully) first. */
  after: string[];
  /** Plain words, starting with the object: `web: recreate (env GREETING changed)`. */
  reason: string;
}

/** Fetch and unpack an image (also repairs a missing blob or snapshot of a present one). */
export interface PullStep extends StepBase {
  kind: 'pull';
  /** Normalised reference. */
  ref: string;
  /** `os/arch[/variant]` from the Image object; the host's if absent. */
  platform?: string;
  /** The Image object's name, or the ref for an image a container names directly. */
  name: string;
  /** The image is present and this pull only restores what is missing (same content expected). */
  repair: boolean;
}

export interface CreateVolumeStep extends StepBase {
  kind: 'create-volume';
  volume: string;
}

/**
 * Create a container from its image and start it. If a record of it exists (its container was
 * removed behind berth's back) the executor replaces it. The executor records
 * `specHash(spec, <manifest digest of the image at ref>)`.
 */
export interface CreateContainerStep extends StepBase {
  kind: 'create';
  container: string;
  doc: ContainerDoc;
  spec: NormalisedContainerSpec;
  /** The container was recorded but had gone missing: this create repairs it. */
  repair?: boolean;
}

/** Start a new task in an existing container (its writable layer kept), by policy or to repair. */
export interface StartContainerStep extends StepBase {
  kind: 'start';
  container: string;
  /** The back-off streak to record with the new task. */
  backoffStreak: number;
  /** The task still runs (it is unhealthy): stop it first. */
  stopFirst?: boolean;
}

/**
 * Replace a container whose spec or image changed: stop and remove the old one (its writable layer
 * goes; named volumes stay), then create and start the new one. Its `after` includes the pull of
 * the new image: updates download before they kill.
 */
export interface RecreateContainerStep extends StepBase {
  kind: 'recreate';
  container: string;
  doc: ContainerDoc;
  spec: NormalisedContainerSpec;
  /** What changed, in plain words (also in `reason`). */
  changes: string[];
}

/**
 * Put back a container a rollout replaced (a rollback): the current one is stopped and removed, and
 * the retired one starts again on its own writable layer, from the image digest it ran.
 */
export interface RestoreContainerStep extends StepBase {
  kind: 'restore';
  container: string;
  doc: ContainerDoc;
}

/** Stop (stop signal, grace period, SIGKILL) and remove a container no longer desired. */
export interface RemoveContainerStep extends StepBase {
  kind: 'remove';
  container: string;
  /** Removed for good even while a rollout keeps what it replaces: kill-then-download makes room for its image. */
  discard?: boolean;
}

/** Collect garbage after something was removed or replaced. */
export interface GcStep extends StepBase {
  kind: 'gc';
}

/**
 * Nothing to execute: something the plan cannot do yet, and why (a restart in back-off, a pull
 * whose registry is unreachable, a dependency that is not running). The loop may wake at `until`.
 */
export interface WaitStep extends StepBase {
  kind: 'wait';
  /** The container or image (by name) that waits. */
  object: string;
  /** When waiting ends by itself (a back-off), if it does. */
  until?: number;
  /** The dependencies whose health checks it waits for (condition Healthy), none of them unhealthy yet. */
  awaitsHealth?: string[];
}

export type Step =
  | PullStep
  | CreateVolumeStep
  | CreateContainerStep
  | StartContainerStep
  | RecreateContainerStep
  | RestoreContainerStep
  | RemoveContainerStep
  | GcStep
  | WaitStep;

export type StepKind = Step['kind'];

/** Steps that change something (all but `wait`): a plan without any is converged. */
export function isChange(step: Step): step is Exclude<Step, WaitStep> {
  return step.kind !== 'wait';
}
