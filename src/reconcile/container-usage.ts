/**
 * After each daemon turn: every container's restarts, and the CPU time and memory of those running,
 * read from their cgroups (src/runtime/cgroup-stats.ts), into the `/metrics` gauges.
 */
import { readCgroupStats } from '../runtime/cgroup-stats.ts';
import type { ContainerRuntime } from '../runtime/container-runtime.ts';
import type { ContainerUsage, Metrics } from './metrics.ts';

export async function recordContainerUsage(metrics: Metrics, runtime: ContainerRuntime): Promise<void> {
  const rows = await Promise.all(
    (await runtime.list()).map(async (c): Promise<ContainerUsage> => {
      const usage: ContainerUsage = { name: c.name, restarts: c.record.restartCount };
      if (c.state !== 'running') return usage;
      const s = await readCgroupStats(c.record.cgroupsPath);
      return { ...usage, cpuSeconds: s.cpuNs / 1e9, memoryBytes: s.memoryBytes };
    }),
  );
  metrics.setContainerUsage(rows);
}
