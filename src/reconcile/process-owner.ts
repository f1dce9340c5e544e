/**
 * Which of berth's containers a host process belongs to, read from the cgroups of the running
 * ones (only when asked: a port holder is rare). A port held by a container's own process (its
 * version on the host's network that a version on networks replaces) is then not in its way.
 */
import { cgroupProcesses } from '../runtime/cgroup-stats.ts';
import type { ContainerRuntime } from '../runtime/container-runtime.ts';
import type { ProcessOwner } from '../network/port-holder.ts';

export function processOwners(runtime: Pick<ContainerRuntime, 'list'>): ProcessOwner {
  let owners: Promise<Map<number, string>> | undefined;
  const read = async () => {
    const byPid = new Map<number, string>();
    for (const c of await runtime.list()) {
      if (c.state !== 'running') continue;
      for (const pid of await cgroupProcesses(c.record.cgroupsPath)) byPid.set(pid, c.name);
    }
    return byPid;
  };
  return async (pid) => {
    owners ??= read();
    return (await owners).get(pid);
  };
}
