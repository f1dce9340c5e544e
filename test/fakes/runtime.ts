/**
 * A container runtime for unit tests: containers and their tasks live in memory. A task runs until
 * the test ends it (`exit(name, code)`), with start and exit times from the injected clock, so
 * restarts by policy, back-offs and rollout confirmations can be driven without runc or root.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerRuntime, ContainerStatus, CreateRequest, StartOptions } from '../../src/runtime/container-runtime.ts';
import type { ExecOptions, ExecResult } from '../../src/runtime/exec.ts';
import { newContainerRecord, type ContainerRecord, type ExitStatus } from '../../src/runtime/state.ts';
import { BerthError, failedPrecondition, notFound, unimplemented } from '../../src/errors.ts';

interface Task {
  id: string;
  startedAtMs: number;
}

interface FakeContainer {
  record: ContainerRecord;
  task?: Task;
  exit?: ExitStatus;
  stopped: boolean;
}

export class FakeRuntime implements ContainerRuntime {
  readonly root: string;
  readonly dir: string;
  private readonly now: () => number;
  private readonly containers = new Map<string, FakeContainer>();
  /** Every task started, in order: `name` per start. */
  readonly started: string[] = [];
  /** A check `validate` runs (a command missing from the image, say): return an error to refuse. */
  refuse?: (req: CreateRequest) => Error | undefined;

  constructor(opts: { root: string; now?: () => number }) {
    this.root = opts.root;
    this.dir = `${opts.root}/containers`;
    this.now = opts.now ?? Date.now;
  }

  private get(name: string): FakeContainer {
    const c = this.containers.get(name);
    if (!c) throw notFound(`container ${name} not found`);
    return c;
  }

  /** The running task of `name` ends now with `exitCode`. */
  exit(name: string, exitCode: number, opts: { oomKilled?: boolean } = {}): void {
    const c = this.get(name);
    if (!c.task) throw failedPrecondition(`container ${name} has no running task`);
    const at = this.now();
    c.exit = {
      taskId: c.task.id,
      pid: 1000,
      exitCode,
      signal: 0,
      oomKilled: opts.oomKilled ?? false,
      startedAtMs: c.task.startedAtMs,
      exitedAtMs: at,
      ranForMs: at - c.task.startedAtMs,
    };
    c.task = undefined;
  }

  /** The container disappears (bundle and task), as if someone removed it by hand. */
  forget(name: string): void {
    this.get(name);
    this.containers.delete(name);
  }

  names(): string[] {
    return [...this.containers.keys()].sort();
  }

  async validate(req: CreateRequest): Promise<unknown> {
    const refused = this.refuse?.(req);
    if (refused) throw refused;
    return {};
  }

  async create(req: CreateRequest): Promise<ContainerStatus> {
    await this.validate(req);
    const key = req.instance ?? req.name;
    if (this.containers.has(key)) throw new BerthError('AlreadyExists', `container ${key} already exists`);
    const record = newContainerRecord(req, {
      runtime: 'fake',
      runtimeRoot: this.dir,
      cgroupsPath: `/berth/${key}`,
      createdAt: new Date(this.now()).toISOString(),
    });
    this.containers.set(key, { record, stopped: false });
    return { name: req.name, record, state: 'created' };
  }

  async start(name: string, opts: StartOptions = {}): Promise<ContainerStatus> {
    const c = this.get(name);
    if (c.task) return this.statusOf(c);
    if (opts.restart && c.exit) c.record.restartCount++;
    if (opts.backoffStreak !== undefined) c.record.backoffStreak = opts.backoffStreak;
    c.task = { id: randomBytes(8).toString('hex'), startedAtMs: this.now() };
    c.record.task = { id: c.task.id, startedAt: new Date(c.task.startedAtMs).toISOString() };
    c.stopped = false;
    this.started.push(name);
    return this.statusOf(c);
  }

  async stop(name: string): Promise<ContainerStatus> {
    const c = this.get(name);
    if (c.task) this.exit(name, 143);
    c.stopped = true;
    c.record.task = undefined;
    return this.statusOf(c);
  }

  async delete(name: string): Promise<{ snapshotKey: string }> {
    const c = this.get(name);
    this.containers.delete(name);
    return { snapshotKey: c.record.snapshotKey };
  }

  async list(): Promise<ContainerStatus[]> {
    return this.names()
      .filter((n) => this.get(n).record.name === n)
      .map((n) => this.statusOf(this.get(n)));
  }

  async promote(name: string, instance: string): Promise<{ replacedSnapshotKey?: string }> {
    const successor = this.get(instance);
    const replaced = this.containers.get(name);
    this.containers.delete(name);
    this.containers.delete(instance);
    this.containers.set(name, successor);
    return { replacedSnapshotKey: replaced?.record.snapshotKey };
  }

  async successors(): Promise<{ name: string; instance: string; snapshotKey: string }[]> {
    return this.names()
      .filter((n) => this.get(n).record.name !== n)
      .map((n) => ({ name: this.get(n).record.name, instance: n, snapshotKey: this.get(n).record.snapshotKey }));
  }

  async deleteSuccessor(instance: string): Promise<{ snapshotKey: string }> {
    return this.delete(instance);
  }

  async status(name: string): Promise<ContainerStatus> {
    return this.statusOf(this.get(name));
  }

  async readRecord(name: string): Promise<ContainerRecord> {
    return this.get(name).record;
  }

  async exec(name: string, _opts: ExecOptions): Promise<ExecResult> {
    throw unimplemented(`container ${name}: the fake runtime runs no processes`);
  }

  async recover(): Promise<string[]> {
    return [];
  }

  private statusOf(c: FakeContainer): ContainerStatus {
    const base = { name: c.record.name, record: c.record };
    if (c.task) return { ...base, state: 'running', pid: 1000, startedAtMs: c.task.startedAtMs };
    const state = c.stopped ? 'stopped' : c.exit ? 'exited' : 'created';
    return { ...base, state, exit: c.exit, startedAtMs: c.exit?.startedAtMs, finishedAtMs: c.exit?.exitedAtMs };
  }
}
