/**
 * Host devices for containers: a device named in a spec is looked up on the host when the container
 * is created (its type, numbers and mode go into the bundle; runc makes the node), and device cgroup
 * rules are read from Docker's text form. Pure parsing here, plus the two host look-ups.
 */
import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isMissing } from '../durable-file.ts';
import { BerthError, invalidArgument } from '../errors.ts';
import type { DeviceSpec } from '../manifest/types.ts';

/** A device node to create in the container (OCI `linux.devices`) and what its cgroup allows. */
export interface ContainerDevice {
  /** Where it appears in the container. */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
  /** Device cgroup access: some of r, w, m. */
  access: string;
}

/** An OCI `linux.resources.devices` entry. */
export interface DeviceCgroupRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access: string;
}

/**
 * A device a container names is not on the host (yet): FailedPrecondition, and this class so a
 * caller can tell it from other unmet preconditions and wait for the device (`device`, also the place).
 */
export class DeviceNotPresentError extends BerthError {
  readonly device: string;

  constructor(device: string, cause?: unknown) {
    super('FailedPrecondition', `device ${device} not present`, { cause, place: { file: device } });
    this.name = 'DeviceNotPresentError';
    this.device = device;
  }
}

/**
 * The devices of a spec as they are on the host now. A device that is not there (a USB adapter not
 * plugged in yet) is FailedPrecondition, with the device path as the error's place, so the caller
 * can wait for it rather than fail the set; a path that is there but is no device is InvalidArgument.
 */
export async function resolveDevices(container: string, devices: readonly DeviceSpec[]): Promise<ContainerDevice[]> {
  const out: ContainerDevice[] = [];
  for (const d of devices) {
    let st;
    try {
      st = await stat(d.path); // follows /dev/serial/by-id/… symlinks to the node
    } catch (err: any) {
      if (isMissing(err)) throw new DeviceNotPresentError(d.path, err);
      throw err;
    }
    if (st.isDirectory()) {
      // A directory (/dev/dri, /dev/snd) gives every device under it, as `docker run --device` does.
      for (const dev of await hostDevices(d.path))
        out.push({ ...dev, path: path.posix.join(d.target, path.relative(d.path, dev.path)), access: d.permissions });
      continue;
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice())
      throw invalidArgument(`container ${container}: ${d.path} is not a device node or a directory of them`, { place: { file: d.path } });
    out.push(deviceNode(d.target, st, d.permissions));
  }
  return out;
}

/** Every device node under the host's /dev (for a privileged container, what runc and Docker give one), or under a directory of it. */
export async function hostDevices(dev = '/dev'): Promise<ContainerDevice[]> {
  // runc's list of what a host's /dev holds that is not the host's to hand over.
  const skipDirs = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);
  const out: ContainerDevice[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!skipDirs.has(e.name)) await walk(p);
      } else if ((e.isCharacterDevice() || e.isBlockDevice()) && p !== path.join(dev, 'console')) {
        const st = await stat(p).catch(() => undefined);
        if (st) out.push(deviceNode(p, st, 'rwm'));
      }
    }
  };
  await walk(dev);
  return out;
}

/** The node to make at `target` for the host device `st` describes. */
function deviceNode(target: string, st: Stats, access: string): ContainerDevice {
  return { path: target, type: st.isCharacterDevice() ? 'c' : 'b', ...deviceNumbers(st.rdev), fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid, access };
}

/** glibc's major()/minor() of a dev_t. */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** `c 188:* rmw` → an allow rule (the manifest schema has checked the form). */
export function parseDeviceCgroupRule(rule: string): DeviceCgroupRule {
  const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!m) throw invalidArgument(`device cgroup rule "${rule}" is not "type major:minor access" (e.g. c 188:* rmw)`);
  const out: DeviceCgroupRule = { allow: true, type: m[1] as 'a' | 'b' | 'c', access: m[4]! };
  if (m[2] !== '*') out.major = Number(m[2]);
  if (m[3] !== '*') out.minor = Number(m[3]);
  return out;
}
