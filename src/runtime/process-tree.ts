/**
 * Kill a process and every process it started, as seen from the host's /proc. A probe killed at its
 * timeout must leave nothing behind, and killing only the top process would orphan its children
 * (they would be reparented to the container's init and live on). So: stop the whole tree first
 * (a stopped process cannot fork), look again until no new descendant appears, then SIGKILL all.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Every process's parent, from /proc/<pid>/stat (field 4, after the command name in parentheses). */
async function parentsByPid(): Promise<Map<number, number>> {
  const pids = (await readdir('/proc')).map(Number).filter((pid) => Number.isInteger(pid));
  const stats = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)));
  const parents = new Map<number, number>();
  pids.forEach((pid, i) => {
    const stat = stats[i];
    if (stat === undefined) return; // it exited while we looked
    // The command name may itself contain ") ": the fields resume after the last one.
    parents.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  });
  return parents;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err: any) {
    if (err?.code !== 'ESRCH') throw err;
  }
}

/** SIGKILL `pid` and all its descendants. Returns the pids signalled. */
export async function killProcessTree(pid: number): Promise<number[]> {
  const tree = new Set<number>([pid]);
  signal(pid, 'SIGSTOP');
  // Bounded: a tree cannot grow once every member found is stopped, so this ends after its depth.
  for (let round = 0; round < 64; round++) {
    const parents = await parentsByPid();
    const found: number[] = [];
    for (const [child, parent] of parents) if (tree.has(parent) && !tree.has(child)) found.push(child);
    if (found.length === 0) break;
    for (const child of found) {
      tree.add(child);
      signal(child, 'SIGSTOP');
    }
  }
  for (const p of tree) signal(p, 'SIGKILL');
  return [...tree];
}
