/**
 * What a container uses, read from its cgroup (`record.cgroupsPath`): CPU time, memory, pids and
 * block I/O, on cgroup v2 (one tree: cpu.stat, memory.current, pids.current, io.stat) or v1 (a tree
 * per controller: cpuacct, memory, pids, blkio; a hybrid host is read as v1, where runc puts tasks).
 * A file that is missing (a controller not enabled, the cgroup gone) reads as nothing, never an error.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface CgroupStats {
  /** CPU time used by every process the container ran, in nanoseconds. */
  cpuNs: number;
  /** Memory in use, without the inactive page cache (what `docker stats` shows), in bytes. */
  memoryBytes: number;
  /** The memory limit; undefined when there is none. */
  memoryLimitBytes?: number;
  pids: number;
  pidsLimit?: number;
  blockReadBytes: number;
  blockWriteBytes: number;
}

export const CGROUP_ROOT = '/sys/fs/cgroup';

/** cgroup v2 alone (no v1 hierarchies): the root holds cgroup.controllers. */
export function isCgroupV2(root = CGROUP_ROOT): boolean {
  return existsSync(path.join(root, 'cgroup.controllers'));
}

const readText = (file: string) => readFile(file, 'utf8').catch(() => undefined);

async function readNumber(file: string): Promise<number | undefined> {
  const t = (await readText(file))?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** `key value` lines (memory.stat, cpu.stat). */
async function readKeyed(file: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of ((await readText(file)) ?? '').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined && Number.isFinite(Number(v))) out.set(k, Number(v));
  }
  return out;
}

/** v1 reports "no limit" as a huge number (the page counter's max, rounded to pages). */
const V1_UNLIMITED = 2 ** 62;

/** The stats of the cgroup at `cgroupsPath` (relative to each hierarchy's root). */
export async function readCgroupStats(cgroupsPath: string, root = CGROUP_ROOT): Promise<CgroupStats> {
  return isCgroupV2(root) ? readV2(path.join(root, cgroupsPath)) : readV1(root, cgroupsPath);
}

async function readV2(dir: string): Promise<CgroupStats> {
  const [cpu, memCurrent, memMax, memStat, pids, pidsMax, io] = await Promise.all([
    readKeyed(path.join(dir, 'cpu.stat')),
    readNumber(path.join(dir, 'memory.current')),
    readNumber(path.join(dir, 'memory.max')),
    readKeyed(path.join(dir, 'memory.stat')),
    readNumber(path.join(dir, 'pids.current')),
    readNumber(path.join(dir, 'pids.max')),
    readText(path.join(dir, 'io.stat')),
  ]);
  // io.stat: one line a device, `8:0 rbytes=1 wbytes=2 rios=3 wios=4 …`.
  let read = 0,
    write = 0;
  for (const line of (io ?? '').split('\n')) {
    for (const field of line.split(' ').slice(1)) {
      const [k, v] = field.split('=');
      if (k === 'rbytes') read += Number(v) || 0;
      if (k === 'wbytes') write += Number(v) || 0;
    }
  }
  return {
    cpuNs: (cpu.get('usage_usec') ?? 0) * 1000,
    memoryBytes: Math.max(0, (memCurrent ?? 0) - (memStat.get('inactive_file') ?? 0)),
    memoryLimitBytes: memMax,
    pids: pids ?? 0,
    pidsLimit: pidsMax,
    blockReadBytes: read,
    blockWriteBytes: write,
  };
}

async function readV1(root: string, cgroupsPath: string): Promise<CgroupStats> {
  const at = (controller: string, file: string) => path.join(root, controller, cgroupsPath, file);
  const [cpuNs, usage, limit, memStat, pids, pidsMax, io] = await Promise.all([
    readNumber(at('cpuacct', 'cpuacct.usage')),
    readNumber(at('memory', 'memory.usage_in_bytes')),
    readNumber(at('memory', 'memory.limit_in_bytes')),
    readKeyed(at('memory', 'memory.stat')),
    readNumber(at('pids', 'pids.current')),
    readNumber(at('pids', 'pids.max')),
    readText(at('blkio', 'blkio.throttle.io_service_bytes_recursive')),
  ]);
  // `8:0 Read 4096` … and a `Total` line: sum Read and Write over the devices.
  let read = 0,
    write = 0;
  for (const line of (io ?? '').split('\n')) {
    const [, op, v] = line.split(' ');
    if (op === 'Read') read += Number(v) || 0;
    if (op === 'Write') write += Number(v) || 0;
  }
  return {
    cpuNs: cpuNs ?? 0,
    memoryBytes: Math.max(0, (usage ?? 0) - (memStat.get('total_inactive_file') ?? 0)),
    memoryLimitBytes: limit !== undefined && limit < V1_UNLIMITED ? limit : undefined,
    pids: pids ?? 0,
    pidsLimit: pidsMax,
    blockReadBytes: read,
    blockWriteBytes: write,
  };
}

/** The processes in the container's cgroup (host pids): v2's one tree, or v1's pids (else memory) hierarchy. */
export async function cgroupProcesses(cgroupsPath: string, root = CGROUP_ROOT): Promise<number[]> {
  const candidates = isCgroupV2(root)
    ? [path.join(root, cgroupsPath, 'cgroup.procs')]
    : ['pids', 'memory', 'cpuacct'].map((c) => path.join(root, c, cgroupsPath, 'cgroup.procs'));
  for (const f of candidates) {
    const t = await readText(f);
    if (t !== undefined) return t.split('\n').filter(Boolean).map(Number).filter(Number.isInteger);
  }
  return [];
}

/**
 * CPU use between two samples as a percentage of one CPU (as `docker stats` shows it: 200% is two
 * cores busy).
 */
export function cpuPercent(before: CgroupStats, after: CgroupStats, elapsedNs: number): number {
  if (elapsedNs <= 0) return 0;
  return (Math.max(0, after.cpuNs - before.cpuNs) / elapsedNs) * 100;
}
