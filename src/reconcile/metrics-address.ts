/**
 * Where `/metrics` and `/healthz` may be served (`[metrics] address`). They say which containers
 * run and how they fail, so by default only this machine reaches them: a loopback TCP address, or a
 * unix socket (its directory created, the socket 0660: root and the socket's group). A TCP address
 * any other host can reach is refused unless `[metrics] allow_remote = true` says it is meant.
 */
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { invalidArgument } from '../errors.ts';
import { isLoopbackHost } from '../oci/reference.ts';

const UNIX = 'unix:';

/** Refuse a remote address that is not allowed; make a unix socket's directory. Before listening. */
export async function prepareMetricsAddress(address: string, allowRemote: boolean): Promise<void> {
  if (address.startsWith(UNIX)) {
    await mkdir(path.dirname(address.slice(UNIX.length)), { recursive: true, mode: 0o755 });
    return;
  }
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw invalidArgument(`metrics.address "${address}" is not host:port or unix:/path`);
  if (!allowRemote && !isLoopbackHost(m[1]!)) {
    throw invalidArgument(
      `metrics.address "${address}" is not a loopback address: other hosts could read /metrics and /healthz; use 127.0.0.1 or a unix socket, or set [metrics] allow_remote = true`,
    );
  }
}

/** After listening: a unix socket is 0660 (connecting needs write permission). */
export async function restrictMetricsSocket(address: string): Promise<void> {
  if (address.startsWith(UNIX)) await chmod(address.slice(UNIX.length), 0o660);
}
