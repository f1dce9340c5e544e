/**
 * Who owns a lock file or a piece of work in progress (an unpack's active snapshot, a snapshot
 * directory being built), recorded so that another berth can tell, with certainty, that the
 * owner is gone and take over.
 *
 * A pid alone is not enough: pids are reused, within a boot and certainly after one (a device
 * that lost power boots into the same few hundred pids), and `kill(0, 0)` succeeds for pid 0.
 * So the identity is the pid, that process's start time (clock ticks since boot, field 22 of
 * `/proc/<pid>/stat`) and the boot id (`/proc/sys/kernel/random/boot_id`): the owner is alive
 * only if this boot has a process with that pid that started at that tick. Anything that does
 * not parse (an empty file left by a power cut, garbage) names no owner: it is stale.
 *
 * The text form, `<pid>-<start>-<boot id without dashes>`, fits in a lock file, a label and a
 * directory name.
 */
import { readFileSync } from 'node:fs';
import { processAlive } from './process-alive.ts';

export interface OwnerIdentity {
  pid: number;
  /** Start time in clock ticks since boot. */
  start: number;
  /** The boot id, 32 hex digits (dashes removed). */
  boot: string;
}

const TOKEN_RE = /^([1-9]\d{0,9})-(\d{1,20})-([0-9a-f]{32})$/;

let currentBoot: string | undefined;
let self: OwnerIdentity | undefined;

/** This boot's id (read once per process: it cannot change while the process lives). */
export function bootId(): string {
  currentBoot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '');
  return currentBoot;
}

/**
 * The start time of process `pid` (ticks since boot); undefined if there is no such process, or
 * null if it exists but /proc does not show it (a `hidepid` mount), when it cannot be checked.
 */
export function processStartTime(pid: number): number | undefined | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err: any) {
    if (err?.code === 'ENOENT' || err?.code === 'ESRCH') return undefined;
    return processAlive(pid) ? null : undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its closing paren.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return undefined; // a zombie: exited, waiting to be reaped
  const start = Number(fields[19]);
  return Number.isSafeInteger(start) ? start : undefined;
}

/** This process. */
export function selfIdentity(): OwnerIdentity {
  if (!self) {
    const start = processStartTime(process.pid);
    if (typeof start !== 'number') throw new Error(`cannot read the start time of this process from /proc/${process.pid}/stat`);
    self = { pid: process.pid, start, boot: bootId() };
  }
  return self;
}

export function formatOwner(o: OwnerIdentity): string {
  return `${o.pid}-${o.start}-${o.boot}`;
}

/** The identity in `text`, or undefined if it is not one (empty, truncated, garbage, a bare pid). */
export function parseOwner(text: string | undefined): OwnerIdentity | undefined {
  const m = TOKEN_RE.exec((text ?? '').trim());
  if (!m) return undefined;
  const pid = Number(m[1]);
  const start = Number(m[2]);
  if (!Number.isSafeInteger(pid) || !Number.isSafeInteger(start) || pid > 0x7fffffff) return undefined;
  return { pid, start, boot: m[3]! };
}

/** True only if the process `o` names is running now: same boot, same pid, same start time. */
export function ownerAlive(o: OwnerIdentity): boolean {
  if (o.boot !== bootId()) return false;
  const start = processStartTime(o.pid);
  if (start === null) return true; // exists but cannot be checked: never take over a live owner's work
  return start === o.start;
}

/** Whether `text` names an owner that is alive; empty or garbled text names none. */
export function ownerTextAlive(text: string | undefined): boolean {
  const o = parseOwner(text);
  return o !== undefined && ownerAlive(o);
}

/** A human description for messages: `pid 812 (started at tick 4211, this boot)`. */
export function describeOwner(text: string | undefined): string {
  const o = parseOwner(text);
  if (!o) return `no valid owner (${JSON.stringify((text ?? '').slice(0, 40))})`;
  return `pid ${o.pid} (started at tick ${o.start}, ${o.boot === bootId() ? 'this boot' : `boot ${o.boot}`})`;
}
