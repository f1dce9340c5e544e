/**
 * One probe: exec inside the container (Runtime.exec), or an http GET / tcp connect made by berth
 * on the container's network: the host's, or, for a container on networks, from inside its network
 * namespace through a helper process (./netns-probe.ts). Never throws for an unhealthy answer: any
 * failure, timeout included, is a result with the reason as its output.
 */
import { connect } from 'node:net';
import type { ExecOptions, ExecResult } from '../exec.ts';
import { EXEC_OUTPUT_LIMIT_BYTES } from '../exec.ts';
import { describeHealthcheck, healthcheckProblem, hostPort, type Healthcheck } from './healthcheck.ts';
import { probeInNetns } from './netns-probe.ts';

export interface ProbeResult {
  healthy: boolean;
  /** What the probe said (exec: stdout+stderr; http: status line and body), at most 4 KiB. */
  output: string;
  /** exec: the exit code (null at a timeout); http: the status code; tcp: undefined. */
  code?: number | null;
  timedOut: boolean;
  startedAtMs: number;
  durationMs: number;
}

/** The container a probe checks. */
export interface ProbeTarget {
  name: string;
  network: 'host' | 'none';
  /** The network namespace of a container on networks: http and tcp probes are made from inside it. */
  netns?: string;
  exec(args: string[], opts: Pick<ExecOptions, 'timeoutMs' | 'signal'>): Promise<ExecResult>;
}

function tail(text: string): string {
  const b = Buffer.from(text);
  return b.length <= EXEC_OUTPUT_LIMIT_BYTES ? text : b.subarray(b.length - EXEC_OUTPUT_LIMIT_BYTES).toString('utf8');
}

const timeoutNote = (h: Healthcheck) => `health check timed out after ${h.timeoutMs} ms`;

async function execProbe(h: Healthcheck, target: ProbeTarget, signal: AbortSignal): Promise<Omit<ProbeResult, 'startedAtMs' | 'durationMs'>> {
  const r = await target.exec(h.exec!, { timeoutMs: h.timeoutMs, signal });
  if (r.timedOut)
    return { healthy: false, code: null, timedOut: true, output: tail(`${r.output}${r.output && !r.output.endsWith('\n') ? '\n' : ''}${timeoutNote(h)}`) };
  return { healthy: r.exitCode === 0, code: r.exitCode, timedOut: false, output: r.output };
}

async function httpProbe(h: Healthcheck, signal: AbortSignal): Promise<Omit<ProbeResult, 'startedAtMs' | 'durationMs'>> {
  const { host, port, path } = h.http!;
  // A client per probe, closed after it: no pooled connection outlives the probe, and each probe
  // tests that the app still accepts connections. undici is loaded only by a daemon with http
  // probes or pulls: it is the largest module berth has (src/remotes/http-client.ts).
  const { Client, request } = await import('../../remotes/http-client.ts');
  const origin = `http://${hostPort(host, port)}`;
  const client = new Client(origin, { connect: { timeout: h.timeoutMs }, headersTimeout: h.timeoutMs, bodyTimeout: h.timeoutMs });
  try {
    const res = await request(`${origin}${path}`, { dispatcher: client, signal, headers: { 'user-agent': 'berth-healthcheck', connection: 'close' } });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= EXEC_OUTPUT_LIMIT_BYTES) break; // leaving the loop destroys the body: enough to show
    }
    const body = Buffer.concat(chunks).subarray(0, EXEC_OUTPUT_LIMIT_BYTES).toString('utf8');
    return { healthy: res.statusCode >= 200 && res.statusCode < 400, code: res.statusCode, timedOut: false, output: tail(`HTTP ${res.statusCode}\n${body}`) };
  } finally {
    await client.destroy().catch(() => {});
  }
}

function tcpProbe(h: Healthcheck, signal: AbortSignal): Promise<Omit<ProbeResult, 'startedAtMs' | 'durationMs'>> {
  const { host, port } = h.tcp!;
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ healthy: true, timedOut: false, output: `connected to ${hostPort(host, port)}` });
    });
    socket.once('error', reject);
  });
}

/** Run `h` once against `target`. `signal` aborts it (the result is then a failure saying so). */
export async function probeOnce(h: Healthcheck, target: ProbeTarget, signal: AbortSignal): Promise<ProbeResult> {
  const startedAtMs = Date.now();
  const done = (r: Omit<ProbeResult, 'startedAtMs' | 'durationMs'>): ProbeResult => ({ ...r, startedAtMs, durationMs: Date.now() - startedAtMs });
  const problem = healthcheckProblem(h, target.network, target.netns !== undefined);
  if (problem) return done({ healthy: false, timedOut: false, output: problem });
  // exec has its own timeout (it must kill what it started); http and tcp just give up.
  const timeout = h.kind === 'exec' ? undefined : AbortSignal.timeout(h.timeoutMs);
  const limited = timeout ? AbortSignal.any([signal, timeout]) : signal;
  try {
    if (h.kind === 'exec') return done(await execProbe(h, target, limited));
    if (target.netns !== undefined) return done(await probeInNetns(h, target.netns, limited));
    if (h.kind === 'http') return done(await httpProbe(h, limited));
    return done(await tcpProbe(h, limited));
  } catch (err) {
    if (timeout?.aborted && !signal.aborted) return done({ healthy: false, code: null, timedOut: true, output: timeoutNote(h) });
    const why = signal.aborted ? 'health check aborted' : (err as Error).message;
    return done({ healthy: false, timedOut: false, output: tail(`${describeHealthcheck(h)}: ${why}`) });
  }
}
