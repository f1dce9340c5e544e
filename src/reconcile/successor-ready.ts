/**
 * Start-first's gate: the new container (a successor, running beside the one it replaces) must be
 * ready before the old one is stopped. Ready means running and, with a health check, healthy (the
 * check's own start period and retries apply, as in Docker Swarm's `order: start-first`); without
 * one, still running after a short settle time, which catches a command that exits at once. Later
 * failures (a crash loop after a minute, say) are the rollout's to judge, as for any update.
 */
import { failedPrecondition } from '../errors.ts';
import type { ContainerRuntime } from '../runtime/container-runtime.ts';
import { afterProbe, startingHealth } from '../runtime/health/health-state.ts';
import type { Healthcheck } from '../runtime/health/healthcheck.ts';
import { probeOnce } from '../runtime/health/probe.ts';

/** Without a health check, how long a successor must keep running before it takes over. */
export const SETTLE_MS = 1_000;
const POLL_MS = 100;

export interface SuccessorReadyOptions {
  runtime: Pick<ContainerRuntime, 'status' | 'exec'>;
  /** The container's name (for messages) and the successor's instance name (what runtime calls take). */
  name: string;
  instance: string;
  network: 'host' | 'none';
  check?: Healthcheck;
  signal: AbortSignal;
  /** Injected in tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

/** Resolves when the successor is ready; throws FailedPrecondition (naming why) when it will not be. */
export async function waitSuccessorReady(o: SuccessorReadyOptions): Promise<void> {
  const sleep = o.sleep ?? defaultSleep;
  const running = async (): Promise<number> => {
    const st = await o.runtime.status(o.instance);
    if (st.state !== 'running') {
      const how = st.exit ? `exited with code ${st.exit.exitCode}${st.exit.oomKilled ? ' (OOM)' : ''}` : st.state;
      throw failedPrecondition(`${o.name}: the new container ${how} before it was ready; the old one keeps running`);
    }
    return st.startedAtMs ?? Date.now();
  };
  const startedAt = await running();
  if (!o.check) {
    while (Date.now() - startedAt < SETTLE_MS) {
      await sleep(POLL_MS, o.signal);
      await running();
    }
    return;
  }
  const check = o.check;
  const target = {
    name: o.name,
    network: o.network,
    exec: (args: string[], opts: { timeoutMs?: number; signal?: AbortSignal }) => o.runtime.exec(o.instance, { args, ...opts }),
  };
  let state = startingHealth(check, startedAt, Date.now());
  // Docker probes first one interval after the start; a start-first update should not wait a whole
  // interval (30 s by default) when the app is up at once, so the first probe is after the settle time.
  await sleep(Math.min(SETTLE_MS, check.intervalMs), o.signal);
  for (;;) {
    await running();
    state = afterProbe(state, await probeOnce(check, target, o.signal), check, Date.now());
    if (state.status === 'healthy') return;
    if (state.status === 'unhealthy') {
      throw failedPrecondition(`${o.name}: the new container stayed unhealthy (${state.output.trim() || 'no output'}); the old one keeps running`);
    }
    await sleep(check.intervalMs, o.signal);
  }
}
