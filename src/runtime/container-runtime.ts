/**
 * What the reconcile core asks of a container runtime, after containerd's small interfaces: make a
 * container from a prepared writable layer, run and stop its tasks, list what is there, undo it
 * all. `Runtime` (runtime.ts: runc/crun under berth-shim) implements it; the unit tests' in-memory
 * runtime (test/fakes/runtime.ts) does too, so a reconcile turn can be tested without root.
 */
import type { ContainerSpec } from '../manifest/types.ts';
import type { ImageConfig } from '../oci/types.ts';
import type { Mount } from '../snapshots/snapshotter.ts';
import type { HealthRuntime } from './health/monitor.ts';
import type { ContainerRecord, ExitStatus } from './state.ts';

export interface CreateRequest {
  name: string;
  spec: ContainerSpec;
  imageRef: string;
  imageDigest: string;
  imageConfig: ImageConfig | { config?: ImageConfig['config'] };
  /** The writable snapshot prepared for this container, and the committed chain under it (nearest first). */
  snapshotKey: string;
  snapshotChain: string[];
  /** What `Snapshotter.prepare(snapshotKey, chain[0])` returned. */
  mounts: Mount[];
  specHash?: string;
  /**
   * Create a start-first successor of the container `name` under this instance name (`<name>.<hex>`):
   * it may run beside the current one, and `promote` later gives it the name. Absent: `name`.
   */
  instance?: string;
}

export type TaskState = 'created' | 'running' | 'exited' | 'stopped' | 'unknown';

/** A container as observed now: its record plus the live state of its task. */
export interface ContainerStatus {
  name: string;
  record: ContainerRecord;
  state: TaskState;
  /** The task's pid while running. */
  pid?: number;
  /** The exit of the current task (state exited/stopped), else the last recorded one. */
  exit?: ExitStatus;
  /** Why the state is `unknown` (or `created` while a start is in flight or was interrupted). */
  detail?: string;
  /** When the current (or last) task started and, if it has, ended: ms since the epoch. */
  startedAtMs?: number;
  finishedAtMs?: number;
}

export interface StartOptions {
  /** A new task after one that ended (a restart), rather than the container's first. */
  restart?: boolean;
  /** The back-off streak to record with the new task (restarts by policy). */
  backoffStreak?: number;
  signal?: AbortSignal;
}

export interface ContainerRuntime extends HealthRuntime {
  /** Where each container's directory lives; a task's end writes its exit file there (the daemon watches it). */
  readonly dir: string;
  /** Check a request against its image without creating anything (command, user, bind sources, devices). */
  validate(req: CreateRequest): Promise<unknown>;
  /** The bundle and the mounted rootfs, no task. AlreadyExists if the name is taken. */
  create(req: CreateRequest, signal?: AbortSignal): Promise<ContainerStatus>;
  /** Start a task; a running one is left alone. NotFound if there is no such container. */
  start(name: string, opts?: StartOptions): Promise<ContainerStatus>;
  /** Stop the task (stop signal, grace period, SIGKILL); the container stays, marked stopped. */
  stop(name: string, opts?: { signal?: AbortSignal; gracePeriodMs?: number; stopSignal?: string }): Promise<ContainerStatus>;
  /** Stop, unmount and remove the container; returns its writable snapshot key for the caller to remove. */
  delete(name: string, opts?: { signal?: AbortSignal; gracePeriodMs?: number }): Promise<{ snapshotKey: string }>;
  list(): Promise<ContainerStatus[]>;
  /** One container (or a successor, by its instance name) as it is now. NotFound if there is none. */
  status(name: string): Promise<ContainerStatus>;
  /**
   * Start-first's handover: stop and delete the container `name` (its writable snapshot key is
   * returned) and give its name to the running successor `instance`. Re-entrant after a crash.
   */
  promote(name: string, instance: string, opts?: { signal?: AbortSignal }): Promise<{ replacedSnapshotKey?: string }>;
  /** Successors created by a start-first update that did not finish (none has the name yet). */
  successors(): Promise<{ name: string; instance: string; snapshotKey: string }[]>;
  /** Stop and delete a successor that will not take over; returns its writable snapshot key. */
  deleteSuccessor(instance: string, opts?: { signal?: AbortSignal }): Promise<{ snapshotKey: string }>;
  /** Start-up repair: remove what a crash inside create or delete left. Returns the names removed. */
  recover(signal?: AbortSignal): Promise<string[]>;
}
