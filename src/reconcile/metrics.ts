/**
 * `/healthz` and Prometheus `/metrics` for `berth run`, on a loopback TCP address or a unix socket
 * (config `metrics.address`: `127.0.0.1:9097` or `unix:/run/berth/metrics.sock`).
 */
import { createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { invalidArgument } from '../errors.ts';
import type { HealthStatus } from '../runtime/health/health-state.ts';

/** One container's use: CPU and memory only while its task runs. */
export interface ContainerUsage {
  name: string;
  restarts: number;
  cpuSeconds?: number;
  memoryBytes?: number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'berth_reconcile_duration_seconds',
    help: 'Duration of one observe-plan-execute turn',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });
  readonly steps = new Counter({
    name: 'berth_steps_total',
    help: 'Plan steps executed, by kind and result',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly bytesPulled = new Counter({
    name: 'berth_bytes_pulled_total',
    help: 'Bytes downloaded from registries',
    registers: [this.registry],
  });
  readonly containers = new Gauge({
    name: 'berth_containers',
    help: 'Containers by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly rollouts = new Counter({
    name: 'berth_rollouts_total',
    help: 'Rollouts decided, by result (confirmed, rolledback)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly containerHealthy = new Gauge({
    name: 'berth_container_healthy',
    help: 'Health check of each container that has one: 1 healthy, 0 starting or unhealthy',
    labelNames: ['container'] as const,
    registers: [this.registry],
  });
  readonly containerCpuSeconds = new Gauge({
    name: 'berth_container_cpu_seconds',
    help: "CPU time the running container's processes used so far, from its cgroup (cumulative: use rate())",
    labelNames: ['container'] as const,
    registers: [this.registry],
  });
  readonly containerMemoryBytes = new Gauge({
    name: 'berth_container_memory_bytes',
    help: 'Memory the running container uses, without inactive page cache, from its cgroup',
    labelNames: ['container'] as const,
    registers: [this.registry],
  });
  readonly containerRestarts = new Gauge({
    name: 'berth_container_restarts',
    help: 'Tasks the container started after its first (restarts by policy, to repair drift, berth restart)',
    labelNames: ['container'] as const,
    registers: [this.registry],
  });
  /**
   * Always 1, with the device's name and the source revision of the generation last applied (the
   * git commit) as labels: an info metric, as Prometheus' guide to writing exporters advises for
   * facts about the whole target. A revision label on every series would start new series at each
   * commit; a device label on every series is the scrape config's to add (a target label). A query
   * joins it where needed: `berth_containers * on(instance) group_left(device, revision) berth_info`.
   */
  readonly info = new Gauge({
    name: 'berth_info',
    help: 'Always 1: the device name and the source revision of the generation last applied, as labels',
    labelNames: ['device', 'revision'] as const,
    registers: [this.registry],
  });
  readonly networkContainers = new Gauge({
    name: 'berth_network_containers',
    help: 'Containers attached to each network (declared networks without containers show 0)',
    labelNames: ['network'] as const,
    registers: [this.registry],
  });
  readonly networkPublishedPorts = new Gauge({
    name: 'berth_network_published_ports',
    help: 'Host ports published by the containers on each network',
    labelNames: ['network'] as const,
    registers: [this.registry],
  });
  readonly notifyPending = new Gauge({
    name: 'berth_notify_pending_events',
    help: 'Events waiting for the [notify] webhook (it cannot be reached, or is catching up)',
    registers: [this.registry],
  });
  /** Set by the daemon: false while the last turn failed to run at all. */
  healthy = true;
  lastTurnAt: Date | undefined;

  /** A container's health (src/runtime/health); undefined drops its series (no check, or the container is gone). */
  setContainerHealth(container: string, status: HealthStatus | undefined): void {
    if (status === undefined) this.containerHealthy.remove({ container });
    else this.containerHealthy.set({ container }, status === 'healthy' ? 1 : 0);
  }

  /** Every container's use after a turn; series of containers not listed (removed) go away. */
  setContainerUsage(rows: ContainerUsage[]): void {
    for (const g of [this.containerCpuSeconds, this.containerMemoryBytes, this.containerRestarts]) g.reset();
    for (const r of rows) {
      this.containerRestarts.set({ container: r.name }, r.restarts);
      if (r.cpuSeconds !== undefined) this.containerCpuSeconds.set({ container: r.name }, r.cpuSeconds);
      if (r.memoryBytes !== undefined) this.containerMemoryBytes.set({ container: r.name }, r.memoryBytes);
    }
  }

  /** `berth_info`: the device (`[device] name`, else the hostname) and the revision applied now ('' for none: a plain directory). */
  setInfo(device: string, revision: string | undefined): void {
    this.info.reset();
    this.info.set({ device, revision: revision ?? '' }, 1);
  }

  /** Every network after a turn; series of networks not listed (gone) go away. */
  setNetworkCounts(rows: { name: string; containers: string[]; publishedPorts: number }[]): void {
    for (const g of [this.networkContainers, this.networkPublishedPorts]) g.reset();
    for (const r of rows) {
      this.networkContainers.set({ network: r.name }, r.containers.length);
      this.networkPublishedPorts.set({ network: r.name }, r.publishedPorts);
    }
  }

  setContainerCounts(counts: Record<string, number>): void {
    this.containers.reset();
    for (const [state, n] of Object.entries(counts)) this.containers.set({ state }, n);
  }
}

export async function serveMetrics(metrics: Metrics, address: string, signal: AbortSignal): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(metrics.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(metrics.healthy ? `ok ${metrics.lastTurnAt?.toISOString() ?? 'starting'}\n` : 'unhealthy\n');
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
    } else {
      res.writeHead(404).end();
    }
  });
  if (address.startsWith('unix:')) {
    const socketPath = address.slice('unix:'.length);
    await rm(socketPath, { force: true });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  } else {
    const m = /^(.*):(\d+)$/.exec(address);
    if (!m) throw invalidArgument(`metrics.address "${address}" is not host:port or unix:/path`);
    const host = m[1]!.replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(m[2]), host, resolve));
  }
  signal.addEventListener('abort', () => server.close(), { once: true });
  return server;
}
