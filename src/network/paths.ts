/**
 * Where berth keeps network state under its root. `networks/` holds one attachment file per
 * container on a network (its addresses, the netavark configuration it was set up with): the
 * address allocator's state and the record recovery tears down from. `run/netns/<container>` is
 * the container's network namespace, bind-mounted so it outlives its processes.
 */
import path from 'node:path';

export function networksDir(root: string): string {
  return path.join(root, 'networks');
}

export function attachmentFile(root: string, container: string): string {
  return path.join(networksDir(root), `${container}.json`);
}

export function netnsDir(root: string): string {
  return path.join(root, 'run', 'netns');
}

/** The container's network namespace; the OCI spec's network namespace path. */
export function netnsPath(root: string, container: string): string {
  return path.join(netnsDir(root), container);
}

/** netavark's --config directory (aardvark-dns's configuration and pid file). */
export function netavarkConfigDir(root: string): string {
  return path.join(root, 'run', 'netavark');
}
