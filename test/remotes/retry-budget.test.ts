/**
 * A flaky registry must not beat the retry budget (issue 8 item 10): failures are retried on a time
 * budget per blob with capped back-off, and bytes arriving renew the budget. A real docker-registry
 * behind loopback proxies that fail requests; back-off is made small through the config so the
 * tests stay short.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startFaultProxy, startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startGateProxy } from '../helpers/fault-proxy-gate.ts';
import { buildImage, pushImage, type BuiltImage } from '../helpers/images.ts';
import { RegistryClient } from '../../src/remotes/registry.ts';
import { RetryBudget } from '../../src/remotes/retry.ts';
import { openContentStore } from '../../src/content/local-store.ts';
import { configFromObject } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { isKind } from '../../src/errors.ts';

const BERTH = join(process.cwd(), 'bin/berth');
const BIG = 3 << 20;

let reg: RunningRegistry;
let layered: BuiltImage;
let big: BuiltImage;
let tmp: string;

beforeAll(async () => {
  reg = await startRegistry();
  layered = await buildImage({ layers: [1, 2, 3, 4].map((i) => ({ files: { [`layer${i}`]: randomBytes(64 << 10) }, compression: 'none' as const })) });
  big = await buildImage({ layers: [{ files: { 'big.bin': randomBytes(BIG) }, compression: 'none' }] });
  await pushImage(reg.url, 'layered', 'v1', layered);
  await pushImage(reg.url, 'big', 'v1', big);
});
afterAll(async () => {
  await reg?.stop();
});
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-retry-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(BERTH, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += String(b)));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('a flaky registry', () => {
  it('berth pull completes through a proxy that answers 503 or 429 (Retry-After: 1) to two requests in three', async () => {
    // Failures come in bursts, as in an overload: six in a row, then three served; over all
    // requests, two in three fail. Six failures in a row was what the old attempt count allowed.
    const flaky = await startGateProxy({
      target: reg.url,
      gate: (_q, n) => {
        const slot = n % 9;
        if (slot >= 6) return undefined;
        return slot % 2 === 0 ? { status: 503 } : { status: 429, headers: { 'retry-after': '1' } };
      },
    });
    try {
      const cfg = join(tmp, 'config.toml');
      await writeFile(
        cfg,
        `[pull]\nretry_backoff = "5ms"\nretry_backoff_max = "50ms"\n[registry]\nconfig_path = "${tmp}/certs.d"\ndocker_config = "${tmp}/docker.json"\n`,
      );
      const pulled = await run(['--root', join(tmp, 'root'), '--config', cfg, 'pull', '--no-unpack', `${flaky.host}/layered:v1`]);
      expect(pulled.code, pulled.stderr).toBe(0);
      const failed = flaky.requests.filter((q) => q.status === 503 || q.status === 429).length;
      expect(failed).toBeGreaterThanOrEqual(2 * (flaky.requests.length - failed));
      const verified = await run(['--root', join(tmp, 'root'), '--config', cfg, 'content', 'verify']);
      expect(verified.code, verified.stderr).toBe(0);
    } finally {
      await flaky.stop();
    }
  });

  it('a registry that never recovers is given up once the budget is spent, saying so', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'status', status: 503 } });
    const config = configFromObject({
      root: tmp,
      pull: { retry_budget: '1s', retry_backoff: '50ms', retry_backoff_max: '200ms' },
      registry: { config_path: join(tmp, 'certs.d'), docker_config: join(tmp, 'none.json') },
    });
    const c = new RegistryClient({ config, log: silentLogger() });
    const store = await openContentStore(join(tmp, 'root'));
    const err = await c.fetchBlob(parseReference(`${proxy.host}/big:v1`), big.layers![0]!, store).catch((e) => e);
    await c.close();
    await proxy.stop();
    expect(isKind(err, 'Unavailable')).toBe(true);
    expect(err.message).toMatch(/HTTP 503 \(\d+ failed attempts\); giving up after [\d.]+s without progress \(limits: pull\.retry_budget 1s\)/);
    expect(proxy.requests.length).toBeGreaterThan(3);
  });

  it('bytes arriving renew the budget: a blob cut again and again, with failures between, completes', async () => {
    // Each round: one 503, then a stream cut after 256 KiB. One round fits the budget easily;
    // the twelve rounds the 3 MiB blob needs do not, so only a renewed budget gets through.
    const proxy = await startFaultProxy({ target: reg.url });
    for (let i = 0; i < 16; i++) {
      proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'status', status: 503 }, times: 1 });
      proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'cut', afterBytes: 256 << 10 }, times: 1 });
    }
    const config = configFromObject({
      root: tmp,
      pull: { retry_budget: '1s', retry_backoff: '100ms', retry_backoff_max: '100ms' },
      registry: { config_path: join(tmp, 'certs.d'), docker_config: join(tmp, 'none.json') },
    });
    const c = new RegistryClient({ config, log: silentLogger() });
    const store = await openContentStore(join(tmp, 'root'));
    const r = await c.fetchBlob(parseReference(`${proxy.host}/big:v1`), big.layers![0]!, store);
    await c.close();
    await proxy.stop();
    expect(r.transferred).toBe(big.layers![0]!.size);
    expect(proxy.requests.filter((q) => q.status === 503).length).toBeGreaterThanOrEqual(12);
    expect(await store.has(big.layers![0]!.digest)).toBe(true);
  });
});

describe('RetryBudget (pure logic, a fake clock)', () => {
  const clock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('backs off exponentially up to the cap, Retry-After included, and stops when the budget is spent', () => {
    const c = clock();
    const b = new RetryBudget({ budgetMs: 10_000, initialBackoffMs: 100, maxBackoffMs: 1000 }, c.now);
    const delays: number[] = [];
    for (let d = b.nextDelay(); d !== undefined; d = b.nextDelay()) {
      delays.push(d);
      c.advance(d);
    }
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
    expect(delays.slice(4, -1).every((d) => d >= 500)).toBe(true); // capped, not shrinking
    expect(delays.reduce((a, d) => a + d, 0)).toBeCloseTo(10_000, 6); // the last attempt lands on the deadline
    const fresh = new RetryBudget({ budgetMs: 10_000, initialBackoffMs: 100, maxBackoffMs: 1000 }, c.now);
    expect(fresh.nextDelay(60_000)).toBe(1000);
    expect(fresh.nextDelay(20)).toBe(20);
  });

  it('progress renews the budget and restarts the back-off; max_retries still caps failures in a row', () => {
    const c = clock();
    const b = new RetryBudget({ budgetMs: 1000, initialBackoffMs: 100, maxBackoffMs: 100 }, c.now);
    for (let i = 0; i < 50; i++) {
      c.advance(900);
      b.progress();
      expect(b.nextDelay()).toBeDefined();
    }
    c.advance(1000);
    expect(b.nextDelay()).toBeUndefined();
    const capped = new RetryBudget({ budgetMs: 60_000, initialBackoffMs: 1, maxBackoffMs: 1, maxRetries: 2 }, c.now);
    expect([capped.nextDelay(), capped.nextDelay(), capped.nextDelay()].map((d) => d !== undefined)).toEqual([true, true, false]);
    capped.progress();
    expect(capped.nextDelay()).toBeDefined();
  });
});
