/**
 * Limits of the host process that starts tasks. berth, berth-shim and runc share credentials and
 * rlimits, so what berth itself may set, or holds, is what a task may be given.
 */
import { readFile } from 'node:fs/promises';
import { capabilitiesOfMask } from '../oci/capabilities.ts';

const CAP_SYS_RESOURCE = 24n;

/**
 * The highest hard RLIMIT_NOFILE a task can be given: berth's own hard limit when it lacks
 * CAP_SYS_RESOURCE (only that capability raises a hard limit), undefined when there is no ceiling.
 * A default above the ceiling would make every task fail to start with EPERM.
 */
export async function nofileCeiling(procSelf = '/proc/self'): Promise<number | undefined> {
  const status = await readFile(`${procSelf}/status`, 'utf8');
  const capEff = /^CapEff:\s*([0-9a-fA-F]+)/m.exec(status)?.[1];
  if (capEff !== undefined && (BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) return undefined;
  const limits = await readFile(`${procSelf}/limits`, 'utf8');
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
  return hard === undefined || hard === 'unlimited' ? undefined : Number(hard);
}

/** The capabilities berth holds (its bounding set): a task cannot be given any other. */
export async function hostCapabilities(procSelf = '/proc/self'): Promise<string[] | undefined> {
  const status = await readFile(`${procSelf}/status`, 'utf8');
  const capBnd = /^CapBnd:\s*([0-9a-fA-F]+)/m.exec(status)?.[1];
  return capBnd === undefined ? undefined : capabilitiesOfMask(capBnd);
}
