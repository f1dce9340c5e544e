/**
 * An http or tcp probe from inside a container's network namespace (a container on networks has
 * its own addresses and loopback, which the host cannot reach). berth does not enter the namespace
 * itself: a thread of a Node process cannot setns(CLONE_NEWNET) on its own. util-linux's `nsenter
 * --net=PATH` enters it and execs a small Node program (./netns-probe-main.ts) that makes the same
 * probe as from the host and prints the result. nsenter does not fork for a network namespace, so
 * the probe is one process: killed (SIGKILL) when `signal` aborts (the check's timeout), it leaves
 * nothing behind. Its start-up counts against the timeout (an http probe: a median 1.0 s at load
 * 9–12 on the development machine, against 9 ms from the host).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Healthcheck } from './healthcheck.ts';
import type { ProbeResult } from './probe.ts';

/** `.ts` when run from source, `.js` when run from the build in dist/. */
const MAIN = fileURLToPath(new URL(`./netns-probe-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
const OUTPUT_LIMIT = 64 * 1024;

/** Settles only once the helper has exited (and been reaped): an aborted probe leaves no process. */
export function probeInNetns(h: Healthcheck, netns: string, signal: AbortSignal): Promise<Omit<ProbeResult, 'startedAtMs' | 'durationMs'>> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '--disable-warning=ExperimentalWarning', MAIN, JSON.stringify(h)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout = (stdout + b.toString()).slice(0, OUTPUT_LIMIT)));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-OUTPUT_LIMIT)));
    const kill = () => child.kill('SIGKILL');
    signal.addEventListener('abort', kill, { once: true });
    child.once('error', (err) => {
      signal.removeEventListener('abort', kill);
      reject(err);
    });
    child.once('close', (code, killedBy) => {
      signal.removeEventListener('abort', kill);
      if (signal.aborted) return reject(signal.reason);
      if (code !== 0) return reject(new Error(`probe helper (nsenter --net=${netns}) failed: ${stderr.trim() || `exit ${code ?? killedBy}`}`));
      try {
        const { healthy, output, code: status, timedOut } = JSON.parse(stdout) as ProbeResult;
        resolve({ healthy, output, ...(status !== undefined ? { code: status } : {}), timedOut });
      } catch (err) {
        reject(err);
      }
    });
  });
}
