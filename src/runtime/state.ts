/**
 * What the runtime records per container, in `<root>/containers/<name>/`:
 *   state.json   the ContainerRecord (berth writes it, atomically)
 *   config.json  the OCI bundle config; rootfs/ the mounted snapshot
 *   exit.json    the last task's ExitStatus (berth-shim writes it, atomically, when the task ends)
 *   init.pid     the task's pid (the OCI runtime writes it)
 *   log, log.1…  the task's stdout and stderr as CRI records (time, stream, line), rotated by berth-shim
 *   runtime.log  runc/crun's own messages (warnings, errors)
 * `ps`, `logs` and `inspect` read only these files, so they work without a daemon.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ifExists } from '../durable-file.ts';
import { corrupt } from '../errors.ts';
import type { ContainerSpec } from '../manifest/types.ts';
import type { Mount } from '../snapshots/snapshotter.ts';

export interface ExitStatus {
  taskId: string;
  pid: number;
  /** The exit code, or 128+signal when the task was killed by a signal (as a shell reports it). */
  exitCode: number;
  /** The signal that killed the task, 0 if it exited. */
  signal: number;
  /** The kernel's OOM killer killed a process of the task (cgroup oom_kill counter rose). */
  oomKilled: boolean;
  startedAtMs: number;
  exitedAtMs: number;
  /** How long the task ran, from a monotonic clock (wall-clock jumps do not distort it). */
  ranForMs?: number;
  /** The supervisor vanished without recording an exit (e.g. the machine rebooted). */
  lost?: boolean;
}

export interface TaskRecord {
  id: string;
  shimPid?: number;
  pid?: number;
  startedAt: string;
}

/**
 * The runtime's own record of a container: its bundle, its tasks and how to stop them. The user's
 * intent (the manifest's spec, its hash, the image asked for) is metadata.db's; only the facts the
 * runtime itself acts on are derived from the spec into here.
 */
export interface ContainerRecord {
  version: 2;
  name: string;
  imageRef: string;
  imageDigest: string;
  /** The container's writable (active) snapshot key: the caller removes it after `delete`. */
  snapshotKey: string;
  /** The committed snapshots under it, nearest first (chain IDs). */
  snapshotChain: string[];
  /** What `Snapshotter.prepare()` returned: mounted at `rootfs/`. */
  rootfsMounts: Mount[];
  /** How `stop` ends a task: this signal, then SIGKILL after the grace period (defaults if unset). */
  stopSignal?: string;
  stopGracePeriodMs?: number;
  /** The task's network: a probe of a `none` container runs inside it, not from the host. */
  network: ContainerSpec['network'];
  /** The task has a terminal (the shim logs what comes through it). */
  tty?: boolean;
  specHash?: string;
  /** Path of the OCI runtime binary and its state dir, as used to start the task. */
  runtime: string;
  runtimeRoot: string;
  cgroupsPath: string;
  /**
   * This instance's directory name under `containers/` and its runtime (runc) id, when they are not
   * `name`: a start-first update's successor (`<name>.<hex>`), which runs beside the container it
   * replaces and then takes its name (`containers/<name>` becomes a link to it).
   */
  instance?: string;
  createdAt: string;
  /** Tasks started after the first one (restarts by policy or to repair drift). */
  restartCount: number;
  /** Consecutive short-lived restarts, for the back-off (reset after 10 min up): the reconciler's plan sets it. */
  backoffStreak: number;
  task?: TaskRecord;
  /** The last finished task whose exit berth has processed. */
  lastExit?: ExitStatus;
  /** Stopped on purpose (berth stop/delete): the restart policy leaves it alone. */
  stopped?: boolean;
  /** Secrets whose values are the task's env (`envFrom`): each start runs it from a bundle on the tmpfs (src/secrets/secret-env.ts). */
  secretEnv?: string[];
}

/** What a new container's record is made from: the create request's parts and where its tasks run. */
export interface NewRecord {
  name: string;
  imageRef: string;
  imageDigest: string;
  snapshotKey: string;
  snapshotChain: string[];
  mounts: Mount[];
  spec: Pick<ContainerSpec, 'network' | 'stopSignal' | 'stopGracePeriodMs' | 'tty' | 'envFrom'>;
  specHash?: string;
  instance?: string;
}

export function newContainerRecord(req: NewRecord, where: { runtime: string; runtimeRoot: string; cgroupsPath: string; createdAt: string }): ContainerRecord {
  return {
    version: 2,
    name: req.name,
    imageRef: req.imageRef,
    imageDigest: req.imageDigest,
    snapshotKey: req.snapshotKey,
    snapshotChain: req.snapshotChain,
    rootfsMounts: req.mounts,
    stopSignal: req.spec.stopSignal,
    stopGracePeriodMs: req.spec.stopGracePeriodMs,
    network: req.spec.network,
    ...(req.spec.tty ? { tty: true } : {}),
    ...(req.spec.envFrom?.length ? { secretEnv: req.spec.envFrom.map((e) => e.secret) } : {}),
    specHash: req.specHash,
    ...(req.instance && req.instance !== req.name ? { instance: req.instance } : {}),
    ...where,
    restartCount: 0,
    backoffStreak: 0,
  };
}

/**
 * Read a record, upgrading one an older berth wrote (version 1 held the whole ContainerSpec and the
 * old task monitor's restart fields): the facts the runtime needs are kept, the rest dropped.
 */
export async function readContainerRecord(file: string): Promise<ContainerRecord | undefined> {
  const raw = await readJson<ContainerRecord | LegacyRecord>(file);
  if (raw?.version !== 1) return raw as ContainerRecord | undefined;
  const { spec, nextRestartAt: _n, restartDecision: _r, ...rest } = raw;
  return {
    ...rest,
    version: 2,
    stopSignal: spec?.stopSignal,
    stopGracePeriodMs: spec?.stopGracePeriodMs,
    network: spec?.network ?? 'host',
    ...(spec?.tty ? { tty: true } : {}),
  };
}

/** A record as berth up to version 1 wrote it. */
type LegacyRecord = Omit<ContainerRecord, 'version' | 'network'> & {
  version: 1;
  spec?: Partial<ContainerSpec>;
  nextRestartAt?: string;
  restartDecision?: string;
};

export const RECORD_FILE = 'state.json';
export const EXIT_FILE = 'exit.json';
export const PID_FILE = 'init.pid';
export const LOG_FILE = 'log';
export const RUNTIME_LOG_FILE = 'runtime.log';
export const BUNDLE_CONFIG = 'config.json';
export const ROOTFS_DIR = 'rootfs';

/** The directory name and runtime id of a container's instance (see `ContainerRecord.instance`). */
export function instanceOf(r: Pick<ContainerRecord, 'name' | 'instance'>): string {
  return r.instance ?? r.name;
}

export function containersDir(root: string): string {
  return path.join(root, 'containers');
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  const text = await ifExists(readFile(file, 'utf8'));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw corrupt(`${file}: not valid JSON`, { cause: err, place: { file } });
  }
}

/** The labels a container was created with: its bundle's OCI annotations (the spec puts them there). */
export async function bundleLabels(containerDir: string): Promise<Record<string, string>> {
  const bundle = await readJson<{ annotations?: Record<string, string> }>(path.join(containerDir, BUNDLE_CONFIG)).catch(() => undefined);
  return bundle?.annotations ?? {};
}
