import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Metrics, serveMetrics } from '../../src/reconcile/metrics.ts';

describe('metrics server', () => {
  it('serves /healthz and Prometheus /metrics on a loopback port', async () => {
    const metrics = new Metrics();
    const ac = new AbortController();
    const server = await serveMetrics(metrics, '127.0.0.1:0', ac.signal);
    const port = (server.address() as { port: number }).port;
    try {
      metrics.steps.inc({ kind: 'pull', result: 'ok' });
      metrics.setContainerCounts({ running: 2, exited: 1 });
      const health = await request(`http://127.0.0.1:${port}/healthz`);
      expect(health.statusCode).toBe(200);
      await health.body.text();
      const body = await (await request(`http://127.0.0.1:${port}/metrics`)).body.text();
      expect(body).toContain('berth_steps_total{kind="pull",result="ok"} 1');
      expect(body).toContain('berth_containers{state="running"} 2');
      expect(body).toContain('berth_reconcile_duration_seconds_bucket');
      metrics.healthy = false;
      const unhealthy = await request(`http://127.0.0.1:${port}/healthz`);
      expect(unhealthy.statusCode).toBe(503);
      await unhealthy.body.text();
    } finally {
      ac.abort();
    }
  });
});
