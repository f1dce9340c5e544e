/** Pure logic: where a health check comes from (Docker's rules) and how probe results change health. */
import { describe, expect, it } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { afterProbe, startingHealth, visiblyChanged } from '../../src/runtime/health/health-state.ts';
import { fromImageConfig, fromManifest, healthcheckProblem, resolveHealthcheck, type Healthcheck } from '../../src/runtime/health/healthcheck.ts';
import type { ProbeResult } from '../../src/runtime/health/probe.ts';

const S = 1e9; // nanoseconds in a second, as image configs count

describe('image config Healthcheck → Healthcheck', () => {
  it('CMD runs its arguments; CMD-SHELL runs /bin/sh -c; nanoseconds become ms', () => {
    expect(fromImageConfig({ Test: ['CMD', '/bin/check', '--quick'], Interval: 5 * S, Timeout: 2 * S, StartPeriod: 20 * S, Retries: 4 })).toEqual({
      kind: 'exec',
      exec: ['/bin/check', '--quick'],
      intervalMs: 5000,
      timeoutMs: 2000,
      startPeriodMs: 20_000,
      retries: 4,
    });
    expect(fromImageConfig({ Test: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1/ || exit 1'] })?.exec).toEqual([
      '/bin/sh',
      '-c',
      'wget -q -O- http://127.0.0.1/ || exit 1',
    ]);
  });

  it("fills Docker's defaults: interval 30s, timeout 30s, retries 3, start period 0", () => {
    expect(fromImageConfig({ Test: ['CMD', 'true'] })).toEqual({
      kind: 'exec',
      exec: ['true'],
      intervalMs: 30_000,
      timeoutMs: 30_000,
      retries: 3,
      startPeriodMs: 0,
    });
    expect(fromImageConfig({ Test: ['CMD', 'true'], Interval: 0, Retries: 0 })).toMatchObject({ intervalMs: 30_000, retries: 3 });
  });

  it('NONE, an empty test or no Healthcheck means no check', () => {
    expect(fromImageConfig({ Test: ['NONE'] })).toBeUndefined();
    expect(fromImageConfig({ Test: [] })).toBeUndefined();
    expect(fromImageConfig(undefined)).toBeUndefined();
    expect(resolveHealthcheck(undefined, { config: {} })).toBeUndefined();
  });

  it('an unknown form is an InvalidArgument error', () => {
    expect(
      isKind(
        (() => {
          try {
            fromImageConfig({ Test: ['SHELL', 'x'] });
          } catch (e) {
            return e;
          }
        })(),
        'InvalidArgument',
      ),
    ).toBe(true);
  });

  it("the manifest's check overrides the image's entirely", () => {
    const image = { config: { Healthcheck: { Test: ['CMD', '/bin/image-check'], Interval: 7 * S } } };
    expect(resolveHealthcheck(undefined, image)).toMatchObject({ kind: 'exec', exec: ['/bin/image-check'], intervalMs: 7000 });
    const manifest = { http: { port: 8080, path: '/healthz', host: '127.0.0.1' }, intervalMs: 10_000, timeoutMs: 3000, retries: 3, startPeriodMs: 30_000 };
    expect(resolveHealthcheck(manifest, image)).toEqual({
      kind: 'http',
      http: { port: 8080, path: '/healthz', host: '127.0.0.1' },
      intervalMs: 10_000,
      timeoutMs: 3000,
      retries: 3,
      startPeriodMs: 30_000,
    });
    expect(fromManifest({ tcp: { port: 9000, host: '127.0.0.2' }, intervalMs: 1, timeoutMs: 1, retries: 1, startPeriodMs: 0 })).toMatchObject({
      kind: 'tcp',
      tcp: { port: 9000, host: '127.0.0.2' },
    });
  });

  it('http and tcp checks cannot run for a network: none container', () => {
    const http = fromManifest({ http: { port: 80, path: '/', host: '127.0.0.1' }, intervalMs: 1, timeoutMs: 1, retries: 1, startPeriodMs: 0 });
    expect(healthcheckProblem(http, 'none')).toContain('network: host');
    expect(healthcheckProblem(http, 'host')).toBeUndefined();
    expect(healthcheckProblem(fromManifest({ exec: ['true'], intervalMs: 1, timeoutMs: 1, retries: 1, startPeriodMs: 0 }), 'none')).toBeUndefined();
  });
});

describe('health state transitions', () => {
  const check: Healthcheck = { kind: 'exec', exec: ['check'], intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 10_000 };
  const T0 = 1_000_000;
  const result = (healthy: boolean, atMs: number, output = healthy ? 'ok' : 'down'): ProbeResult => ({
    healthy,
    output,
    code: healthy ? 0 : 1,
    timedOut: false,
    startedAtMs: atMs,
    durationMs: 5,
  });
  const run = (results: ProbeResult[]) => results.reduce((s, r) => afterProbe(s, r, check, r.startedAtMs + 5), startingHealth(check, T0, T0));

  it('failures within the start period do not count while starting', () => {
    const s = run([1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => result(false, T0 + i * 1000)));
    expect(s).toMatchObject({ status: 'starting', failingStreak: 0, output: 'down' });
  });

  it('after the start period, retries failures in a row make it unhealthy', () => {
    const s1 = run([result(false, T0 + 10_000), result(false, T0 + 11_000)]);
    expect(s1).toMatchObject({ status: 'starting', failingStreak: 2 });
    const s2 = afterProbe(s1, result(false, T0 + 12_000), check, T0 + 12_005);
    expect(s2).toMatchObject({ status: 'unhealthy', failingStreak: 3, changedAt: T0 + 12_005 });
  });

  it('a success makes it healthy at once, even in the start period; then failures count', () => {
    const s = run([result(true, T0 + 1000), result(false, T0 + 2000), result(false, T0 + 3000)]);
    expect(s).toMatchObject({ status: 'healthy', failingStreak: 2, changedAt: T0 + 1005 });
    expect(afterProbe(s, result(false, T0 + 4000), check, 0).status).toBe('unhealthy');
    expect(afterProbe(s, result(true, T0 + 4000), check, 0)).toMatchObject({ status: 'healthy', failingStreak: 0 });
  });

  it('is visibly changed by status, output or streak up to retries; not by a streak past retries', () => {
    const down = run([3, 4, 5].map((i) => result(true, T0 + i * 1000)).concat([10, 11, 12].map((i) => result(false, T0 + i * 1000))));
    expect(down.status).toBe('unhealthy');
    const later = afterProbe(down, result(false, T0 + 13_000), check, 0);
    expect(later.failingStreak).toBe(4);
    expect(visiblyChanged(down, later)).toBe(false);
    expect(visiblyChanged(down, afterProbe(down, result(false, T0 + 13_000, 'other'), check, 0))).toBe(true);
    const healthy = run([result(true, T0 + 1000)]);
    expect(visiblyChanged(healthy, afterProbe(healthy, result(false, T0 + 2000, 'ok'), check, 0))).toBe(true);
    expect(visiblyChanged(healthy, afterProbe(healthy, result(true, T0 + 2000), check, 0))).toBe(false);
  });
});
