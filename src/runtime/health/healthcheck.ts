/**
 * What a health check is, once normalised, and where it comes from: the manifest's `healthcheck`
 * (defaults already applied by the loader) or, when the manifest has none, the image config's
 * Docker `Healthcheck` (Docker's rules and defaults; `NONE` disables the image's check).
 */
import { invalidArgument } from '../../errors.ts';
import type { HealthcheckSpec } from '../../manifest/types.ts';

export type HealthcheckKind = 'exec' | 'http' | 'tcp';

/**
 * A check to run: the manifest's fields (exactly one of exec, http, tcp; durations in ms) and which
 * one it is. exec: exit 0 is healthy; http: a GET answered 200-399; tcp: a connection accepted.
 * `retries` failures in a row (after `startPeriodMs`) make the container unhealthy.
 */
export interface Healthcheck extends HealthcheckSpec {
  kind: HealthcheckKind;
}

/** The image config's `config.Healthcheck` (Docker's HEALTHCHECK; durations in nanoseconds, 0 = default). */
export interface DockerHealthcheck {
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** Docker's defaults for an image HEALTHCHECK that leaves a field out. */
export const DOCKER_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 } as const;

export function fromManifest(h: HealthcheckSpec): Healthcheck {
  const timing = { intervalMs: h.intervalMs, timeoutMs: h.timeoutMs, retries: h.retries, startPeriodMs: h.startPeriodMs };
  const kinds = [h.exec && 'exec', h.http && 'http', h.tcp && 'tcp'].filter(Boolean);
  if (kinds.length !== 1) throw invalidArgument(`healthcheck: give exactly one of exec, http, tcp (got ${kinds.length ? kinds.join(', ') : 'none'})`);
  if (h.exec) {
    if (h.exec.length === 0) throw invalidArgument('healthcheck: exec is empty');
    return { kind: 'exec', exec: [...h.exec], ...timing };
  }
  if (h.http) return { kind: 'http', http: { ...h.http }, ...timing };
  return { kind: 'tcp', tcp: { ...h.tcp! }, ...timing };
}

const nsToMs = (ns: number | undefined, fallback: number) => (ns && ns > 0 ? Math.round(ns / 1e6) : fallback);

/**
 * The image's check, or undefined when it has none or disables it (`["NONE"]`). `CMD` runs its
 * arguments directly, `CMD-SHELL` runs its one string with `/bin/sh -c`, as Docker does.
 */
export function fromImageConfig(h: DockerHealthcheck | undefined | null): Healthcheck | undefined {
  const test = h?.Test;
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  const timing = {
    intervalMs: nsToMs(h.Interval, DOCKER_DEFAULTS.intervalMs),
    timeoutMs: nsToMs(h.Timeout, DOCKER_DEFAULTS.timeoutMs),
    retries: h.Retries && h.Retries > 0 ? h.Retries : DOCKER_DEFAULTS.retries,
    startPeriodMs: nsToMs(h.StartPeriod, DOCKER_DEFAULTS.startPeriodMs),
  };
  const [form, ...rest] = test;
  if (form === 'CMD') {
    if (rest.length === 0) throw invalidArgument('image Healthcheck: CMD without a command');
    return { kind: 'exec', exec: rest, ...timing };
  }
  if (form === 'CMD-SHELL') {
    if (rest.length !== 1) throw invalidArgument(`image Healthcheck: CMD-SHELL takes one string (got ${rest.length})`);
    return { kind: 'exec', exec: ['/bin/sh', '-c', rest[0]!], ...timing };
  }
  throw invalidArgument(`image Healthcheck: unknown test form "${form}" (expected CMD, CMD-SHELL or NONE)`);
}

/**
 * The check berth runs for a container: the manifest's overrides the image's entirely (the loader
 * fills the manifest's defaults, so there is nothing left to inherit field by field).
 */
export function resolveHealthcheck(
  manifest: HealthcheckSpec | undefined,
  imageConfig: { config?: { Healthcheck?: DockerHealthcheck | null } } | undefined,
): Healthcheck | undefined {
  if (manifest) return fromManifest(manifest);
  return fromImageConfig(imageConfig?.config?.Healthcheck);
}

/**
 * Why this check cannot run for a container on `network`, or undefined. http and tcp probes are
 * made by berth itself: from the host's network, or from inside the network namespace of a
 * container `onNetworks`. A bare `network: none` container has a namespace nobody can enter (runc
 * made it for the task, with only a loopback): use an exec probe there (it runs inside the container).
 */
export function healthcheckProblem(h: Healthcheck, network: 'host' | 'none', onNetworks = false): string | undefined {
  if (h.kind !== 'exec' && network === 'none' && !onNetworks) {
    return `${h.kind} health checks need network: host or networks (berth probes from the host's network or the container's networks); with network: none use an exec check`;
  }
  return undefined;
}

/** One line for humans: `exec /bin/wget -q …`, `http 127.0.0.1:8080/healthz`, `tcp 127.0.0.1:8080`. */
export function describeHealthcheck(h: Healthcheck): string {
  if (h.kind === 'exec') return `exec ${h.exec!.join(' ')}`;
  if (h.kind === 'http') return `http ${hostPort(h.http!.host, h.http!.port)}${h.http!.path}`;
  return `tcp ${hostPort(h.tcp!.host, h.tcp!.port)}`;
}

export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
