/**
 * End-to-end helpers: the real CLI (`./bin/berth` as child processes) on a temp root, manifests
 * written as YAML, busybox images built for a test registry, and a cleanup that leaves nothing
 * behind (containers removed, tasks and shims killed, mounts unmounted, files removed).
 *
 * @example
 *   const e = await E2eRoot.create('lifecycle');
 *   await e.writeManifests('app.yaml', [volume('data'), container('one', { image: DEMO_REF })]);
 *   const r = await e.berth('apply', '-f', e.manifests);     // { code, stdout, stderr }
 *   const daemon = e.start('run', '-f', e.manifests);         // background; daemon.waitFor(/running/)
 *   await e.cleanup();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { buildImage, type BuiltImage, type FileContent } from './images.ts';

const run = promisify(execFile);
export const REPO = process.cwd();
export const BERTH = join(REPO, 'bin/berth');
export const NODE = join(REPO, 'node_modules/.bin/node');
/** The demo image's name, as scripts/build-demo-image.ts tags it. */
export const DEMO_REF = 'localhost/berth-demo/busybox:latest';

/** Fail loudly (never skip) when the machine cannot run end-to-end tests. */
export function requireE2e(): void {
  if (process.getuid?.() !== 0) throw new Error('end-to-end tests need root (runc, overlay mounts, cgroups)');
  for (const bin of ['/bin/busybox', '/usr/sbin/runc', '/usr/bin/docker-registry', '/usr/bin/skopeo']) {
    if (!existsSync(bin) && !existsSync(bin.replace('/usr/sbin/', '/usr/bin/'))) throw new Error(`${bin} missing: the e2e tests need it`);
  }
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Background {
  child: ChildProcess;
  /** Everything written so far. */
  output(): string;
  /** Resolves when stdout+stderr (from `from` on) matches `re`; rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpMatchArray>;
  done: Promise<Run>;
  /** SIGTERM (a clean stop, as systemd sends) and wait for the process to end. */
  stop(): Promise<Run>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export interface PsRow {
  name: string;
  image: string;
  imageDigest: string;
  state: string;
  pid: number | null;
  exitCode: number | null;
  restarts: number;
  startedAt: string | null;
}

export interface StatusJson {
  generation: { id: number; result: string } | null;
  objects: Array<{ kind: string; name: string; state: string; reason: string; message: string }>;
  events: Array<{ time: string; type: string; object: { kind: string; name: string }; reason: string; message: string }>;
}

/** A temp berth root with its own manifests dir, import dir and config file. */
export class E2eRoot {
  readonly dir: string;
  readonly root: string;
  readonly manifests: string;
  readonly config: string;
  private readonly children = new Set<ChildProcess>();

  private constructor(dir: string) {
    this.dir = dir;
    this.root = join(dir, 'root');
    this.manifests = join(dir, 'manifests');
    this.config = join(dir, 'config.toml');
  }

  /** `config`: extra TOML for the config file (e.g. `[reconcile]\nresync_interval = "1s"`). */
  static async create(name: string, opts: { config?: string } = {}): Promise<E2eRoot> {
    const e = new E2eRoot(await mkdtemp(join(tmpdir(), `berth-e2e-${name}-`)));
    await mkdir(join(e.root, 'import'), { recursive: true });
    await mkdir(e.manifests, { recursive: true });
    await e.writeConfig(opts.config ?? '');
    return e;
  }

  /** Write the config file: registry settings isolated from the host's, plus `extra` TOML. */
  async writeConfig(extra: string): Promise<void> {
    await writeFile(
      this.config,
      `[pull]\nmax_retries = 1\n[registry]\nconfig_path = "${this.dir}/certs.d"\ndocker_config = "${this.dir}/docker.json"\n${extra}\n`,
    );
  }

  /** Build the demo busybox image into the import directory (imported at the next apply). */
  async importDemo(): Promise<void> {
    await run(NODE, ['scripts/build-demo-image.ts', join(this.root, 'import', 'demo.tar')], { cwd: REPO });
  }

  args(args: string[]): string[] {
    return ['--root', this.root, '--config', this.config, ...args];
  }

  /** Run berth in the background (output collected). */
  start(...args: string[]): Background {
    const child = spawn(BERTH, this.args(args), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let out = '';
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b) => {
      out += String(b);
      stdout += String(b);
    });
    child.stderr!.on('data', (b) => {
      out += String(b);
      stderr += String(b);
    });
    const done = new Promise<Run>((resolve) =>
      child.on('close', (code, signal) => {
        this.children.delete(child);
        resolve({ code: code ?? (signal ? 128 : null), stdout, stderr });
      }),
    );
    return {
      child,
      done,
      output: () => out,
      stop: () => {
        child.kill('SIGTERM');
        return done;
      },
      waitFor: (re, timeoutMs = 20_000, from = 0) => until(`berth output matching ${re}`, () => out.slice(from).match(re) ?? undefined, timeoutMs, 25),
    };
  }

  /** Run berth to completion. */
  berth(...args: string[]): Promise<Run> {
    return this.start(...args).done;
  }

  async ps(): Promise<PsRow[]> {
    const r = await this.berth('ps', '--json');
    if (r.code !== 0) throw new Error(`berth ps failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as PsRow[];
  }

  async running(name: string): Promise<PsRow | undefined> {
    return (await this.ps()).find((c) => c.name === name && c.state === 'running');
  }

  async status(): Promise<StatusJson> {
    const r = await this.berth('status', '--json', '--events', '200');
    if (r.code !== 0) throw new Error(`berth status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as StatusJson;
  }

  /** `berth content verify`: exit code and output. */
  verify(): Promise<Run> {
    return this.berth('content', 'verify');
  }

  /** Replace the manifests directory's contents with `files` (name → documents or raw text). */
  async writeManifests(files: Record<string, object[] | string>): Promise<void> {
    for (const f of await readdir(this.manifests)) await rm(join(this.manifests, f), { recursive: true, force: true });
    for (const [name, docs] of Object.entries(files)) await writeManifest(join(this.manifests, name), docs);
  }

  /** Kill berth processes this root started that still run, remove every container, unmount, delete. */
  async cleanup(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    const empty = join(this.dir, 'empty');
    await mkdir(empty, { recursive: true });
    if (existsSync(join(this.root, 'metadata.db'))) await this.berth('apply', '-f', empty, '--allow-empty').catch(() => undefined);
    await forceCleanRoot(this.root);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Whatever an apply could not remove: tasks runc knows under this root, supervisors (berth-shim
 * processes whose command line names this root), then every mount under it, deepest first.
 */
export async function forceCleanRoot(root: string): Promise<void> {
  const runcRoot = join(root, 'runtime', 'runc');
  if (existsSync(runcRoot)) {
    for (const id of await readdir(runcRoot).catch(() => [] as string[])) {
      await run('runc', ['--root', runcRoot, 'delete', '-f', id]).catch(() => undefined);
    }
  }
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(`${root}/`) && cmd.includes('berth-shim')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  }
  await unmountUnder(root);
}

/** Unmount everything mounted at or under `dir`, deepest first (lazily if busy). */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
}

export async function writeManifest(path: string, docs: object[] | string): Promise<void> {
  await writeFile(path, typeof docs === 'string' ? docs : docs.map((d) => stringify(d)).join('---\n'));
}

// ---------------------------------------------------------------------------------- documents

const API = 'berth.dev/v1alpha1';

export function volumeDoc(name: string): object {
  return { apiVersion: API, kind: 'Volume', metadata: { name } };
}

export function imageDoc(name: string, ref: string, pullPolicy: 'IfNotPresent' | 'Always' = 'IfNotPresent'): object {
  return { apiVersion: API, kind: 'Image', metadata: { name }, spec: { ref, pullPolicy } };
}

/**
 * A Container running a shell loop that exits promptly on SIGTERM (`network: none`, so tests in
 * parallel never share a port). `script` runs once before the loop.
 */
export function containerDoc(
  name: string,
  spec: { image: string; script?: string; env?: Record<string, string>; volume?: string; restartPolicy?: string; dependsOn?: string[] },
): object {
  return {
    apiVersion: API,
    kind: 'Container',
    metadata: { name },
    spec: {
      image: spec.image,
      command: ['/bin/sh', '-c', `trap 'exit 0' TERM; ${spec.script ?? 'true'}; while true; do sleep 1; done`],
      env: spec.env ?? {},
      network: 'none',
      restartPolicy: spec.restartPolicy ?? 'Always',
      ...(spec.volume ? { mounts: [{ type: 'volume', name: spec.volume, target: '/data' }] } : {}),
      ...(spec.dependsOn ? { dependsOn: spec.dependsOn } : {}),
      stopGracePeriod: '2s',
    },
  };
}

// ------------------------------------------------------------------------------------- images

/** A busybox image for a registry: static busybox with a few applets, plus `extra` files (a second layer). */
export async function busyboxImage(extra: Record<string, FileContent> = {}): Promise<BuiltImage> {
  const busybox = await readFile('/bin/busybox');
  const applets = ['sh', 'sleep', 'cat', 'echo', 'true', 'date'];
  const files: Record<string, FileContent> = { 'bin/busybox': { content: busybox, mode: 0o755 }, 'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' };
  for (const a of applets) files[`bin/${a}`] = { type: 'symlink', linkname: 'busybox' };
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'data']) files[d] = { type: 'directory' };
  return buildImage({
    layers: [{ files }, { files: { 'etc/version': 'v0\n', ...extra } }],
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
  });
}
