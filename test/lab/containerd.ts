/**
 * A containerd of its own for comparisons: its root, state, socket, config and log all live in
 * one directory the caller chooses (a temp dir), so it never meets the machine's containerd or
 * another test's. containerd is never a dependency of berth: tests use it as the oracle for what
 * an unpack must look like, benches as the program to beat.
 *
 * @example
 *   const ctrd = await startContainerd(`${tmp}/ctrd`);
 *   await ctrd.ctr(['images', 'pull', '--plain-http', `${lab.registry.host}/busybox:latest`]);
 *   await ctrd.stop();   // stops it, unmounts what it mounted, removes the directory
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { unmountUnder } from './mounts.ts';

const run = promisify(execFile);

export interface RunningContainerd {
  dir: string;
  /** The gRPC socket, for `ctr --address`. */
  address: string;
  /** The daemon's pid (benches read its peak RSS from /proc). */
  pid: number;
  /** Run `ctr --address <socket> [--namespace ns] …args`; resolves to its stdout. */
  ctr(args: string[], opts?: { namespace?: string; signal?: AbortSignal }): Promise<string>;
  /** Stop the daemon, unmount what it left mounted under `dir`, remove `dir` (unless `keep`). */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/** Start containerd with everything under `dir` (created; must not hold another containerd). */
export async function startContainerd(dir: string, opts: { signal?: AbortSignal } = {}): Promise<RunningContainerd> {
  await mkdir(dir, { recursive: true });
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  const logFile = join(dir, 'containerd.log');
  await writeFile(config, `version = 2\nroot = "${join(dir, 'root')}"\nstate = "${join(dir, 'state')}"\n[grpc]\n  address = "${address}"\n`);
  const log = await open(logFile, 'a');
  const child = spawn('containerd', ['--config', config], { stdio: ['ignore', log.fd, log.fd] });
  // Listen before any await: 'spawn' and 'error' fire on the next tick.
  const spawned = new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.once('exit', () => (exited = true));
  await log.close();
  const failed = await spawned;
  if (failed) throw new Error(`containerd could not be started (apt-get install containerd): ${failed.message}`);

  const ctr = async (args: string[], o: { namespace?: string; signal?: AbortSignal } = {}) => {
    const ns = o.namespace ? ['--namespace', o.namespace] : [];
    const { stdout } = await run('ctr', ['--address', address, ...ns, ...args], { maxBuffer: 64 << 20, signal: o.signal });
    return stdout;
  };
  const stop = async (o: { keep?: boolean } = {}) => {
    if (!exited) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exit.then(() => false), sleep(10_000).then(() => true)]);
      if (killed) child.kill('SIGKILL');
      await exit;
    }
    await unmountUnder(dir);
    if (!o.keep) await rm(dir, { recursive: true, force: true });
  };

  // Ready when ctr gets an answer over the socket (asked only once the socket exists: ctr waits
  // 10 s for a socket that is not there).
  for (let i = 0; i < 200 && !exited; i++) {
    opts.signal?.throwIfAborted();
    const socketThere = await stat(address).then(
      () => true,
      () => false,
    );
    if (
      socketThere &&
      (await ctr(['version'], { signal: opts.signal }).then(
        () => true,
        () => false,
      ))
    )
      return { dir, address, pid: child.pid!, ctr, stop };
    await sleep(50);
  }
  const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
  await stop().catch(() => {});
  throw new Error(`containerd did not start${exited ? ` (exited ${child.exitCode})` : ' within 10 s'}; its log:\n${tail}`);
}
