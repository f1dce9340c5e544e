/**
 * What a valid set asks for that deserves a second look: not problems (the set is applied), but
 * said by `berth validate` and `berth plan` so a reviewer sees it. Today: privileged containers.
 */
import type { ManifestProblem } from './problems.ts';
import type { ContainerDoc } from './types.ts';

export function containerWarnings(containers: readonly ContainerDoc[]): ManifestProblem[] {
  return containers
    .filter((c) => c.spec.privileged)
    .map((c) => ({
      place: c.place,
      message: `warning: container ${c.metadata.name} is privileged: every capability and host device, no seccomp filter, /sys writable`,
    }));
}
