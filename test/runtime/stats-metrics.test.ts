/**
 * `/metrics` per container (issue 11): CPU seconds, memory bytes and restarts, labelled by name,
 * set by `berth run` after each turn from the containers' cgroups. Real daemon, runc, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/reconcile/metrics.ts';
import { freePort } from '../helpers/registry.ts';
import { containerDoc, DEMO_REF, E2eRoot, requireE2e, until, type Background } from '../helpers/e2e.ts';

const metricValue = (text: string, name: string, container: string): number | undefined => {
  const m = new RegExp(`^${name}\\{container="${container}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

describe('per-container metrics', () => {
  let e: E2eRoot;
  let port: number;
  let daemon: Background | undefined;

  beforeAll(async () => {
    requireE2e();
    port = await freePort();
    e = await E2eRoot.create('stats-metrics', { config: `[metrics]\naddress = "127.0.0.1:${port}"\n[reconcile]\nresync_interval = "5m"` });
    await e.importDemo();
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    await e?.cleanup();
  });

  it('berth run serves CPU seconds, memory bytes and restarts of each container, and a restart counts', async () => {
    // Some CPU work at start, then idle.
    await e.writeManifests({ 'm.yaml': [containerDoc('worker', { image: DEMO_REF, script: 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done' })] });
    daemon = e.start('run', '-f', e.manifests);
    await daemon.waitFor(/done +worker: create \(not present\)/, 30_000);
    const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const first = await until('worker metrics', async () => {
      const t = await scrape();
      return (metricValue(t, 'berth_container_memory_bytes', 'worker') ?? 0) > 0 && t;
    });
    expect(metricValue(first, 'berth_container_cpu_seconds', 'worker')).toBeGreaterThan(0);
    expect(metricValue(first, 'berth_container_restarts', 'worker')).toBe(0);

    // berth restart holds the reconcile lock: a daemon turn woken meanwhile by the task's exit finds
    // it held and fails, so the next turn (here: the manifest saved again) sets the gauges.
    const r = await e.berth('restart', 'worker');
    expect(r.code).toBe(0);
    await e.writeManifests({ 'm.yaml': [containerDoc('worker', { image: DEMO_REF, script: 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done' })] });
    await until('the restart in /metrics', async () => metricValue(await scrape(), 'berth_container_restarts', 'worker') === 1);
  });

  it('a container that is gone loses its series', async () => {
    const m = new Metrics();
    m.setContainerUsage([
      { name: 'a', restarts: 2, cpuSeconds: 1.5, memoryBytes: 4096 },
      { name: 'b', restarts: 0 },
    ]);
    let text = await m.registry.metrics();
    expect(metricValue(text, 'berth_container_cpu_seconds', 'a')).toBe(1.5);
    expect(metricValue(text, 'berth_container_memory_bytes', 'a')).toBe(4096);
    expect(metricValue(text, 'berth_container_restarts', 'a')).toBe(2);
    expect(metricValue(text, 'berth_container_restarts', 'b')).toBe(0);
    expect(metricValue(text, 'berth_container_memory_bytes', 'b')).toBeUndefined(); // not running
    m.setContainerUsage([{ name: 'b', restarts: 1 }]);
    text = await m.registry.metrics();
    expect(text).not.toContain('container="a"');
    expect(metricValue(text, 'berth_container_restarts', 'b')).toBe(1);
  });
});
