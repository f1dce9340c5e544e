/**
 * The container runtime: bundles under `<root>/containers/<name>/`, tasks run by runc/crun under a
 * detached berth-shim each, so tasks outlive berth (SIGKILL included). Any later berth process
 * constructing a Runtime on the same root sees the same tasks (adoption is just reading the files
 * and checking the shim is alive); exit codes of tasks that end while berth is away are in
 * `exit.json`, written by the shim.
 *
 * Lifecycle: create (validate, bundle, mount rootfs; no task) → start (a task) → the task exits →
 * start again (a restart: same bundle, same writable layer) … → stop → delete (unmounts; the
 * caller removes the writable snapshot it gets back; named volumes are never touched).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, failedPrecondition, invalidArgument, isKind, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import type { Mount } from '../snapshots/snapshotter.ts';
import { isMountPoint, mountAll, unmount } from '../snapshots/mount.ts';
import type { ContainerRuntime, ContainerStatus, CreateRequest, StartOptions } from './container-runtime.ts';
import { execInTask, type ExecOptions, type ExecResult } from './exec.ts';
import { OciRuntime } from './oci-runtime.ts';
import { RootfsReader } from './rootfs-reader.ts';
import { hostDevices, resolveDevices } from './devices.ts';
import { etcFiles, type EtcFiles } from './etc-files.ts';
import { hostCapabilities, nofileCeiling } from './host-limits.ts';
import type { HostOptionInputs } from './spec-options.ts';
import { fsyncDir, ifExists, writeFileAtomic } from '../durable-file.ts';
import { ensureShim, startShim } from './shim.ts';
import { effectiveStopSignal } from './stop-signal.ts';
import { anonymousVolumes, prepareAnonymousVolumes } from './anonymous-volumes.ts';
import { secretBundleDir } from '../secrets/paths.ts';
import { checkSecretsReady, writeSecretBundle } from '../secrets/secret-env.ts';
import { ensureUpdateLock, removeUpdateLock } from './update-lock.ts';
import { buildSpec, executableCandidates, resolveProcess, volumePath, type OciSpec } from './spec.ts';
import {
  BUNDLE_CONFIG,
  containersDir,
  EXIT_FILE,
  instanceOf,
  LOG_FILE,
  newContainerRecord,
  PID_FILE,
  readContainerRecord,
  readJson,
  RECORD_FILE,
  ROOTFS_DIR,
  RUNTIME_LOG_FILE,
  type ContainerRecord,
  type ExitStatus,
} from './state.ts';

/** The record and the bundle's config.json hold the container's env values: owner-only. */
const PRIVATE = 0o600;

/** How the rootfs gets mounted; defaults to src/snapshots/mount.ts (mount(8)). */
export interface RootfsMounter {
  mountAll(mounts: Mount[], target: string, signal?: AbortSignal): Promise<void>;
  unmount(target: string, opts?: { signal?: AbortSignal }): Promise<void>;
  isMountPoint(target: string): Promise<boolean>;
}

export const defaultMounter: RootfsMounter = { mountAll, unmount, isMountPoint };

export interface RuntimeOptions {
  /** berth's root directory. */
  root: string;
  /** `runtime.binary`: runc (default) or crun, a name on PATH or a path. */
  binary?: string;
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** cgroup parent of every container (default `/berth`): a task's cgroup is `<parent>/<name>`. */
  cgroupParent?: string;
  /** Pids limit of a container whose spec sets none (`[runtime] pids_limit`; default 2048, 0: none). */
  pidsLimit?: number;
  /** A static init for `init: true` containers (default: Debian tini's /usr/bin/tini-static). */
  initBinary?: string;
  /** `[updates] lock_path`: where each container sees its update lock (update-lock.ts); absent: no lock. */
  updateLockPath?: string;
  mounter?: RootfsMounter;
  log?: Logger;
}

export type { ContainerStatus, CreateRequest, TaskState } from './container-runtime.ts';

const RUNTIME_LOG_MAX_BYTES = 1024 * 1024;
/** Where the runtime hands a terminal's master end to the shim (a container with `tty`). */
const CONSOLE_SOCKET = 'console.sock';
/** Debian's `tini` package: a static tini, which works in any image. */
const DEFAULT_INIT_BINARY = '/usr/bin/tini-static';
/** The /etc files berth writes for a container (etc-files.ts), in its directory. */
const ETC_FILE_NAMES: Record<keyof EtcFiles, string> = { hostname: 'hostname', hosts: 'hosts', resolvConf: 'resolv.conf' };
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function validateName(name: string): void {
  if (!NAME_RE.test(name)) throw invalidArgument(`container name "${name}" is not valid (letters, digits, _ . -; at most 128)`);
}

export class Runtime implements ContainerRuntime {
  readonly root: string;
  readonly dir: string;
  readonly oci: OciRuntime;
  readonly shim: string;
  readonly logMaxBytes: number;
  readonly logMaxFiles: number;
  readonly cgroupParent: string;
  readonly pidsLimit?: number;
  readonly initBinary: string;
  readonly updateLockPath?: string;
  readonly mounter: RootfsMounter;
  readonly log: Logger;
  /** Serialises mutations of one container within this process. */
  private readonly locks = new Map<string, Promise<unknown>>();

  private constructor(o: RuntimeOptions, oci: OciRuntime, shim: string) {
    this.root = o.root;
    this.dir = containersDir(o.root);
    this.oci = oci;
    this.shim = shim;
    this.logMaxBytes = o.logMaxBytes ?? 10 * 1024 * 1024;
    this.logMaxFiles = o.logMaxFiles ?? 3;
    this.cgroupParent = o.cgroupParent ?? defaultCgroupParent(o.root);
    this.pidsLimit = o.pidsLimit;
    this.initBinary = o.initBinary ?? DEFAULT_INIT_BINARY;
    this.updateLockPath = o.updateLockPath;
    this.mounter = o.mounter ?? defaultMounter;
    this.log = o.log ?? silentLogger();
  }

  /** Check the runtime binary (missing runc → says how to install it) and build the shim if needed. */
  static async open(o: RuntimeOptions, signal?: AbortSignal): Promise<Runtime> {
    const binary = o.binary ?? 'runc';
    const oci = await OciRuntime.resolve(binary, path.join(o.root, 'runtime', path.basename(binary)));
    const shim = await ensureShim(path.join(o.root, 'lib'), signal);
    await mkdir(containersDir(o.root), { recursive: true });
    return new Runtime(o, oci, shim);
  }

  /**
   * For readers (`ps`, `logs`, `inspect`): no runtime binary check, no shim build. Such an instance
   * can observe containers but not start tasks.
   */
  static forReading(o: RuntimeOptions): Runtime {
    const binary = o.binary ?? 'runc';
    return new Runtime(o, new OciRuntime(binary, path.join(o.root, 'runtime', path.basename(binary))), '');
  }

  containerDir(name: string): string {
    return path.join(this.dir, name);
  }

  private withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.locks.set(name, tail);
    void tail.then(() => {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    });
    return next;
  }

  /**
   * Check a request against the image without creating anything: the command exists in the image,
   * the user and group exist, bind sources exist; then the devices it names are present (a missing
   * one is FailedPrecondition: wait for it). Returns the OCI spec that `create` would write.
   */
  async validate(req: CreateRequest): Promise<OciSpec> {
    validateName(req.name);
    if (req.instance !== undefined && !req.instance.startsWith(`${req.name}.`))
      throw invalidArgument(`instance ${req.instance} of container ${req.name} must be named ${req.name}.<suffix>`);
    const reader = RootfsReader.fromMounts(req.mounts);
    const passwd = await reader.readText('/etc/passwd');
    const group = await reader.readText('/etc/group');
    const hostNetworkFiles = {
      resolvConf: existsSync('/etc/resolv.conf') ? '/etc/resolv.conf' : undefined,
      hosts: existsSync('/etc/hosts') ? '/etc/hosts' : undefined,
    };
    const input = {
      name: req.name,
      instance: req.instance,
      spec: req.spec,
      image: req.imageConfig,
      passwd,
      group,
      root: this.root,
      cgroupParent: this.cgroupParent,
      hostNetworkFiles,
      nofileCeiling: await nofileCeiling(),
      defaultPidsLimit: this.pidsLimit,
      updateLockPath: this.updateLockPath,
    };
    const proc = resolveProcess(input);
    const candidates = executableCandidates(proc);
    let found = false;
    for (const c of candidates) if ((found = await reader.isExecutable(c))) break;
    if (!found) {
      const where = proc.args[0]!.includes('/') ? '' : ` (searched PATH ${candidates.map((c) => path.posix.dirname(c)).join(':')})`;
      throw invalidArgument(`container ${req.name}: command "${proc.args[0]}" not found in image ${req.imageRef}${where}`);
    }
    for (const m of req.spec.mounts) {
      if (m.type !== 'bind') continue;
      try {
        await stat(m.source);
      } catch {
        throw invalidArgument(`container ${req.name}: bind mount source ${m.source} does not exist`);
      }
    }
    await checkSecretsReady(this.root, req.spec);
    return buildSpec({ ...input, ...(await this.hostOptionInputs(req)) });
  }

  /** What the spec's options take from the host: devices as they are now, capabilities, the init binary, /etc files. */
  private async hostOptionInputs(req: CreateRequest): Promise<HostOptionInputs> {
    const s = req.spec;
    const files = await this.etcFilesFor(req);
    const dir = this.containerDir(req.instance ?? req.name);
    return {
      availableCapabilities: await hostCapabilities(),
      devices: s.devices?.length ? await resolveDevices(req.name, s.devices) : undefined,
      hostDevices: s.privileged ? await hostDevices() : undefined,
      initBinary: s.init && existsSync(this.initBinary) ? this.initBinary : undefined,
      etcFilePaths: Object.fromEntries(Object.keys(files).map((f) => [f, path.join(dir, ETC_FILE_NAMES[f as keyof EtcFiles])])),
    };
  }

  private async etcFilesFor(req: CreateRequest): Promise<EtcFiles> {
    const read = (f: string) => readFile(f, 'utf8').catch(() => undefined);
    return etcFiles(req.spec, { hosts: await read('/etc/hosts'), resolvConf: await read('/etc/resolv.conf') });
  }

  /**
   * Create the container: validate (nothing is written if that fails), create named volumes, write
   * the bundle, mount the rootfs, then the record (its presence marks a complete container). No task.
   */
  async create(req: CreateRequest, signal?: AbortSignal): Promise<ContainerStatus> {
    const spec = await this.validate(req);
    const key = req.instance ?? req.name;
    return this.withLock(key, async () => {
      const dir = this.containerDir(key);
      if (await readContainerRecord(path.join(dir, RECORD_FILE))) throw new BerthError('AlreadyExists', `container ${key} already exists`);
      signal?.throwIfAborted();
      for (const m of req.spec.mounts) if (m.type === 'volume') await mkdir(volumePath(this.root, m.name), { recursive: true });
      const rootfs = path.join(dir, ROOTFS_DIR);
      await mkdir(rootfs, { recursive: true });
      if (this.updateLockPath) await ensureUpdateLock(this.root, req.name);
      for (const [f, text] of Object.entries(await this.etcFilesFor(req))) {
        await writeFileAtomic(path.join(dir, ETC_FILE_NAMES[f as keyof EtcFiles]), text, { syncDir: false });
      }
      // The record written below syncs the directory, persisting this rename too.
      await writeFileAtomic(path.join(dir, BUNDLE_CONFIG), JSON.stringify(spec, null, 2), { syncDir: false, mode: PRIVATE });
      if (!(await this.mounter.isMountPoint(rootfs))) await this.mounter.mountAll(req.mounts, rootfs, signal);
      await prepareAnonymousVolumes(anonymousVolumes(req.imageConfig, req.spec.mounts, dir), rootfs, signal);
      const record = newContainerRecord(
        { ...req, spec: { ...req.spec, stopSignal: effectiveStopSignal(req.spec, req.imageConfig) } },
        {
          runtime: this.oci.binary,
          runtimeRoot: this.oci.stateRoot,
          cgroupsPath: spec.linux.cgroupsPath,
          createdAt: new Date().toISOString(),
        },
      );
      await this.writeRecord(record);
      this.log.info({ container: key, image: req.imageRef }, 'container created');
      return { name: req.name, record, state: 'created' };
    });
  }

  async readRecord(name: string): Promise<ContainerRecord> {
    const r = await readContainerRecord(path.join(this.containerDir(name), RECORD_FILE));
    if (!r) throw notFound(`container ${name} not found`);
    return r;
  }

  private async writeRecord(r: ContainerRecord, opts: { syncDir?: boolean } = {}): Promise<void> {
    await writeFileAtomic(path.join(this.containerDir(instanceOf(r)), RECORD_FILE), JSON.stringify(r, null, 2), { ...opts, mode: PRIVATE });
  }

  /** Update the record (serialised per container). */
  async updateRecord(name: string, fn: (r: ContainerRecord) => void): Promise<ContainerRecord> {
    return this.withLock(name, async () => {
      const r = await this.readRecord(name);
      fn(r);
      await this.writeRecord(r);
      return r;
    });
  }

  /** The runtime used for this container's tasks (as recorded, so a config change does not orphan them). */
  private ociFor(r: ContainerRecord): OciRuntime {
    return r.runtime === this.oci.binary && r.runtimeRoot === this.oci.stateRoot ? this.oci : new OciRuntime(r.runtime, r.runtimeRoot);
  }

  /**
   * Start a task. Idempotent: a running task is left alone (no duplicates). A finished task is
   * deleted first and a new one started in the same bundle and writable layer (a restart).
   * `restart: true` counts it in `restartCount`; `backoffStreak` is recorded with the new task.
   */
  async start(name: string, opts: StartOptions = {}): Promise<ContainerStatus> {
    if (!this.shim) throw failedPrecondition('this runtime was opened for reading only: it cannot start tasks');
    return this.withLock(name, async () => {
      const st = await this.observe(await this.readRecord(name));
      if (st.state === 'running') return st;
      const r = st.record;
      const id = instanceOf(r);
      // The instance's own directory, never the link `containers/<name>`: a task's supervisor keeps
      // these paths, and a promotion may point the link elsewhere while the task still runs.
      const dir = this.containerDir(id);
      const oci = this.ociFor(r);
      if (st.exit && st.exit.taskId !== r.lastExit?.taskId) r.lastExit = st.exit;
      // The previous task's runtime state and cgroup go first (a first start has none: skip the exec).
      if (r.task || r.lastExit || st.exit) await oci.delete(id, { force: true, signal: opts.signal });
      const rootfs = path.join(dir, ROOTFS_DIR);
      // After a reboot the rootfs is no longer mounted: mount it again (the writable layer survived).
      if (!(await this.mounter.isMountPoint(rootfs))) await this.mounter.mountAll(r.rootfsMounts, rootfs, opts.signal);
      await rm(path.join(dir, EXIT_FILE), { force: true });
      await rm(path.join(dir, PID_FILE), { force: true });
      // runc/crun append to their log on every start: keep a crash-looping container's from growing.
      if (((await stat(path.join(dir, RUNTIME_LOG_FILE)).catch(() => undefined))?.size ?? 0) > RUNTIME_LOG_MAX_BYTES) {
        await rm(path.join(dir, RUNTIME_LOG_FILE), { force: true });
      }
      const taskId = randomBytes(8).toString('hex');
      // A container with a terminal (spec.tty): its output comes through the terminal, which the shim logs.
      const consoleSocket = r.tty ? path.join(dir, CONSOLE_SOCKET) : undefined;
      r.task = { id: taskId, startedAt: new Date().toISOString() };
      if (opts.restart && r.lastExit) r.restartCount++;
      if (opts.backoffStreak !== undefined) r.backoffStreak = opts.backoffStreak;
      r.stopped = false;
      // Recorded before the task starts, so a berth killed right now still knows a task may run.
      await this.writeRecord(r);
      try {
        const shimArgs = {
          taskId,
          exitFile: path.join(dir, EXIT_FILE),
          logFile: path.join(dir, LOG_FILE),
          logMaxBytes: this.logMaxBytes,
          logMaxFiles: this.logMaxFiles,
          pidFile: path.join(dir, PID_FILE),
          oomFile: oomCounterFile(r.cgroupsPath),
          consoleSocket,
          runtimeArgv: oci.runArgv(
            id,
            r.secretEnv?.length ? await writeSecretBundle(this.root, path.basename(dir), dir, r.secretEnv, opts.signal) : dir,
            path.join(dir, PID_FILE),
            path.join(dir, RUNTIME_LOG_FILE),
            consoleSocket,
          ),
        };
        let started: { shimPid: number; pid: number };
        try {
          started = await startShim(this.shim, shimArgs, opts.signal);
        } catch (err) {
          // A stale runtime task of the same name (its container dir was removed by hand, say): the
          // first start skipped the delete to save an exec, so delete it now and try once more.
          if (!isKind(err, 'AlreadyExists')) throw err;
          await oci.delete(id, { force: true, signal: opts.signal });
          started = await startShim(this.shim, shimArgs, opts.signal);
        }
        r.task = { ...r.task, shimPid: started.shimPid, pid: started.pid };
      } catch (err) {
        r.task = undefined;
        await this.writeRecord(r);
        await oci.delete(id, { force: true }).catch(() => {});
        throw failedPrecondition(`container ${name}: cannot start task: ${(err as Error).message}`, { cause: err });
      }
      // Losing this update in a power cut is harmless: the task record written before the start
      // still identifies the task (runc state and exit.json), so skip the directory fsync.
      await this.writeRecord(r, { syncDir: false });
      this.log.info({ container: name, pid: r.task.pid, restart: !!opts.restart }, 'task started');
      return { name, record: r, state: 'running', pid: r.task.pid };
    });
  }

  /** The container as it is now (no mutation). */
  async status(name: string): Promise<ContainerStatus> {
    return this.observe(await this.readRecord(name));
  }

  /** Every container under this root, complete ones only (half-made dirs are `recover()`'s). */
  async list(): Promise<ContainerStatus[]> {
    return (await this.listWithProblems()).containers;
  }

  /**
   * Like list(), and the containers that could not be read (an unreadable or corrupt record), so
   * one bad directory neither hides the others nor goes unexplained.
   */
  async listWithProblems(): Promise<{ containers: ContainerStatus[]; problems: { name: string; error: Error }[] }> {
    const names = (await ifExists(readdir(this.dir)))?.sort();
    if (!names) return { containers: [], problems: [] };
    const containers: ContainerStatus[] = [];
    const problems: { name: string; error: Error }[] = [];
    for (const n of names) {
      try {
        const st = await this.status(n);
        // A start-first instance's own directory: listed under its name (the link), or not at all
        // while it is an unpromoted successor (see successors()).
        if (st.name !== n) continue;
        containers.push(st);
      } catch (err) {
        if (isKind(err, 'NotFound')) continue;
        this.log.error({ container: n, err }, 'cannot read container');
        problems.push({ name: n, error: err as Error });
      }
    }
    return { containers, problems };
  }

  private async observe(r: ContainerRecord): Promise<ContainerStatus> {
    const st = await this.observeTask(r);
    if (st.state === 'running' || st.state === 'unknown') st.startedAtMs = r.task ? Date.parse(r.task.startedAt) : undefined;
    else if (st.exit) {
      st.startedAtMs = st.exit.startedAtMs;
      st.finishedAtMs = st.exit.exitedAtMs;
    }
    return st;
  }

  private async observeTask(r: ContainerRecord): Promise<ContainerStatus> {
    const base = { name: r.name, record: r };
    if (!r.task) return { ...base, state: r.stopped ? 'stopped' : r.lastExit ? 'exited' : 'created', exit: r.lastExit };
    const task = r.task;
    const exited = async (): Promise<ContainerStatus | undefined> => {
      let exit: ExitStatus | undefined;
      try {
        exit = await readJson<ExitStatus>(path.join(this.containerDir(instanceOf(r)), EXIT_FILE));
      } catch (err) {
        if (!isKind(err, 'Corrupt')) throw err;
        // The shim writes it atomically, so only a failing disk gets here: the task ended, its status is lost.
        return { ...base, state: r.stopped ? 'stopped' : 'exited', exit: lostExit(task), detail: (err as Error).message };
      }
      return exit && exit.taskId === task.id ? { ...base, state: r.stopped ? 'stopped' : 'exited', exit } : undefined;
    };
    const done = await exited();
    if (done) return done;
    if (task.shimPid && (await shimAlive(task.shimPid, task.id))) return { ...base, state: 'running', pid: task.pid };
    // The shim may have written exit.json and exited between the two checks above: look again.
    const doneMeanwhile = await exited();
    if (doneMeanwhile) return doneMeanwhile;
    // No shim and no exit file: berth died between recording the task and the shim's reply, or the
    // machine rebooted. Ask the runtime.
    const rs = await this.ociFor(r)
      .state(instanceOf(r))
      .catch(() => undefined);
    if (rs?.status === 'running') {
      // No shim pid recorded (berth died while the shim was replying): the shim still runs and will write exit.json.
      if (!task.shimPid) return { ...base, state: 'running', pid: rs.pid };
      return { ...base, state: 'unknown', pid: rs.pid, detail: 'running without its supervisor: its exit status cannot be recorded' };
    }
    // Never confirmed by its shim: being started right now, or berth died before the shim ran it.
    if (!task.shimPid) return { ...base, state: 'created', exit: r.lastExit, detail: 'task starting, or its start was interrupted' };
    // The shim was started but is gone and the task is not running: a reboot, or the shim was killed.
    return { ...base, state: r.stopped ? 'stopped' : 'exited', exit: lostExit(task), detail: 'the supervisor is gone and recorded no exit status (reboot?)' };
  }

  /**
   * Stop the task: the stop signal, up to the grace period, then SIGKILL; then delete the task.
   * The container stays (restartable, rootfs mounted) and is marked stopped: no policy restarts.
   */
  async stop(name: string, opts: { signal?: AbortSignal; gracePeriodMs?: number; stopSignal?: string } = {}): Promise<ContainerStatus> {
    return this.withLock(name, async () => {
      const r = await this.readRecord(name);
      const oci = this.ociFor(r);
      let st = await this.observe(r);
      if (st.state === 'running' || st.state === 'unknown') {
        const grace = opts.gracePeriodMs ?? r.stopGracePeriodMs ?? 10_000;
        await oci.kill(instanceOf(r), opts.stopSignal ?? r.stopSignal ?? 'SIGTERM', opts.signal);
        st = await this.waitExit(r, grace, opts.signal);
        if (st.state === 'running' || st.state === 'unknown') {
          this.log.info({ container: name, graceMs: grace }, 'grace period over: SIGKILL');
          await oci.kill(instanceOf(r), 'KILL', opts.signal);
          st = await this.waitExit(r, 10_000, opts.signal);
        }
      }
      await oci.delete(instanceOf(r), { force: true, signal: opts.signal });
      if (st.exit) r.lastExit = st.exit;
      r.task = undefined;
      r.stopped = true;
      await this.writeRecord(r);
      return { name, record: r, state: 'stopped', exit: r.lastExit };
    });
  }

  private async waitExit(r: ContainerRecord, ms: number, signal?: AbortSignal): Promise<ContainerStatus> {
    const deadline = Date.now() + ms;
    for (;;) {
      const st = await this.observe(r);
      if ((st.state !== 'running' && st.state !== 'unknown') || Date.now() >= deadline) return st;
      if (st.state === 'unknown' && !(await this.ociFor(r).state(instanceOf(r)))) return st;
      await new Promise((res) => setTimeout(res, 25));
      signal?.throwIfAborted();
    }
  }

  /** Run a process inside the running task (its namespaces, cgroup, user and security settings): see exec.ts. */
  async exec(name: string, opts: ExecOptions): Promise<ExecResult> {
    const st = await this.status(name);
    if (st.state !== 'running' && st.state !== 'unknown') throw failedPrecondition(`container ${name} is not running (${st.state})`);
    return execInTask({ id: instanceOf(st.record), runtime: st.record.runtime, runtimeRoot: st.record.runtimeRoot }, opts);
  }

  /** Send a signal to the running task. */
  async kill(name: string, sig: string, signal?: AbortSignal): Promise<void> {
    const r = await this.readRecord(name);
    await this.ociFor(r).kill(instanceOf(r), sig, signal);
  }

  /**
   * Delete the container: stop it, unmount the rootfs, remove its directory (bundle, logs, record).
   * Returns the writable snapshot key: removing that layer is the snapshotter's job (the caller's).
   * Named volumes are never removed here.
   */
  async delete(name: string, opts: { signal?: AbortSignal; gracePeriodMs?: number } = {}): Promise<{ snapshotKey: string }> {
    return this.deleteInstance(name, { ...opts, keepUpdateLock: false });
  }

  /** `delete`; a successor (or the container a successor replaces) leaves the name's update lock, which the other instance uses. */
  private async deleteInstance(key: string, opts: { signal?: AbortSignal; gracePeriodMs?: number; keepUpdateLock: boolean }): Promise<{ snapshotKey: string }> {
    const st = await this.stop(key, opts);
    return this.withLock(key, async () => {
      await this.removeDir(key, opts.signal);
      if (!opts.keepUpdateLock && st.record.name === key) await removeUpdateLock(this.root, key);
      this.log.info({ container: key }, 'container deleted');
      return { snapshotKey: st.record.snapshotKey };
    });
  }

  /**
   * Remove `containers/<key>`: the instance directory, or the link to one and the directory it
   * points to (a promoted successor).
   */
  private async removeDir(key: string, signal?: AbortSignal): Promise<void> {
    const entry = this.containerDir(key);
    const link = await lstat(entry).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    const dir = link ? path.resolve(this.dir, await readlink(entry)) : entry;
    const rootfs = path.join(dir, ROOTFS_DIR);
    if (existsSync(rootfs)) {
      await this.mounter.unmount(rootfs, { signal });
      // Never recurse into a mounted rootfs: that would delete the writable layer's (or worse, a bind source's) files.
      if (await this.mounter.isMountPoint(rootfs)) throw failedPrecondition(`container ${key}: ${rootfs} is still mounted`);
    }
    // The record goes first: a crash mid-removal leaves a dir without a record, which recover() finishes.
    await rm(path.join(dir, RECORD_FILE), { force: true });
    await rm(dir, { recursive: true, force: true });
    await rm(secretBundleDir(this.root, path.basename(dir)), { recursive: true, force: true });
    if (link) await rm(entry, { force: true });
  }

  /**
   * Start-first, the handover: the container `name` (its task stopped with its grace period, its
   * bundle removed) is replaced by its running successor `instance`, which `containers/<name>` then
   * links to. The successor's task is not touched. Returns the replaced container's writable
   * snapshot (the caller's to keep or remove), or undefined if it was gone already. Re-entrant: a
   * crash at any point leaves either both instances, or only the successor, unlinked or linked.
   */
  async promote(name: string, instance: string, opts: { signal?: AbortSignal } = {}): Promise<{ replacedSnapshotKey?: string }> {
    const successor = await this.readRecord(instance);
    if (successor.name !== name || instanceOf(successor) !== instance) throw invalidArgument(`container ${instance} is not a successor of ${name}`);
    const entry = this.containerDir(name);
    const current = await readlink(entry).catch(() => undefined);
    if (current === instance) return {};
    let replacedSnapshotKey: string | undefined;
    if (existsSync(path.join(entry, RECORD_FILE)))
      replacedSnapshotKey = (await this.deleteInstance(name, { signal: opts.signal, keepUpdateLock: true })).snapshotKey;
    else await this.removeDir(name, opts.signal); // a dangling link or a half-removed directory
    const tmp = `${entry}.link-${randomBytes(4).toString('hex')}`;
    await symlink(instance, tmp);
    await rename(tmp, entry);
    await fsyncDir(this.dir);
    this.log.info({ container: name, instance }, 'successor took over');
    return { replacedSnapshotKey };
  }

  /**
   * Start-first successors that no link names: created (and maybe started) by an update that did
   * not finish. The caller decides, from its own records, whether to promote or delete each.
   */
  async successors(): Promise<{ name: string; instance: string; snapshotKey: string }[]> {
    const found: { name: string; instance: string; snapshotKey: string }[] = [];
    for (const n of await readdir(this.dir).catch(() => [] as string[])) {
      const r = await readContainerRecord(path.join(this.containerDir(n), RECORD_FILE)).catch(() => undefined);
      if (!r || r.name === n || instanceOf(r) !== n) continue;
      if ((await readlink(this.containerDir(r.name)).catch(() => undefined)) === n) continue;
      found.push({ name: r.name, instance: n, snapshotKey: r.snapshotKey });
    }
    return found;
  }

  /** Delete a successor that will not take over (its task, bundle and directory; the name's update lock stays). */
  async deleteSuccessor(instance: string, opts: { signal?: AbortSignal } = {}): Promise<{ snapshotKey: string }> {
    return this.deleteInstance(instance, { ...opts, keepUpdateLock: true });
  }

  /**
   * Start-up repair: container dirs without a record (a crash inside create or delete) are
   * unmounted and removed, with their runtime task. Returns the names removed.
   */
  async recover(signal?: AbortSignal): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const n of names) {
      if (existsSync(path.join(this.containerDir(n), RECORD_FILE))) continue;
      await this.oci.delete(n, { force: true, signal }).catch(() => {});
      await this.removeDir(n, signal);
      removed.push(n);
    }
    return removed;
  }
}

/** The exit of a task whose status was lost (exit.json unreadable, or no supervisor left to write it): a failure. */
function lostExit(task: NonNullable<ContainerRecord['task']>): ExitStatus {
  return {
    taskId: task.id,
    pid: task.pid ?? 0,
    exitCode: 255,
    signal: 0,
    oomKilled: false,
    startedAtMs: Date.parse(task.startedAt),
    exitedAtMs: Date.now(),
    lost: true,
  };
}

/** The cgroup file whose `oom_kill` counter tells an OOM kill: v2 memory.events, v1 memory.oom_control. */
export function oomCounterFile(cgroupsPath: string): string {
  return existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? path.join('/sys/fs/cgroup', cgroupsPath, 'memory.events')
    : path.join('/sys/fs/cgroup/memory', cgroupsPath, 'memory.oom_control');
}

/** The shim with this pid is still ours (pids get reused: check its command line names the task). */
export async function shimAlive(pid: number, taskId: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false; // a zombie waiting for its parent to reap it
    return cmdline.split('\0').includes(taskId);
  } catch {
    return false;
  }
}

/**
 * `/berth` for the default root; for any other root a parent of its own (`/berth-<hash>`), so that
 * two roots on one machine (a test or a bench beside the device's berth) never share a container's
 * cgroup when they use the same container name.
 */
export function defaultCgroupParent(root: string): string {
  const resolved = path.resolve(root);
  return resolved === DEFAULT_ROOT ? '/berth' : `/berth-${createHash('sha256').update(resolved).digest('hex').slice(0, 12)}`;
}
/** config.ts's default root (not imported: the runtime stays free of the config parser). */
const DEFAULT_ROOT = '/var/lib/berth';
