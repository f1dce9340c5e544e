/** The berth_container_healthy gauge the daemon sets from HealthMonitor changes. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/reconcile/metrics.ts';

describe('berth_container_healthy', () => {
  it('is 1 for a healthy container, 0 for starting or unhealthy, and gone once dropped', async () => {
    const m = new Metrics();
    m.setContainerHealth('web', 'healthy');
    m.setContainerHealth('db', 'unhealthy');
    m.setContainerHealth('cache', 'starting');
    const text = await m.registry.metrics();
    expect(text).toContain('berth_container_healthy{container="web"} 1');
    expect(text).toContain('berth_container_healthy{container="db"} 0');
    expect(text).toContain('berth_container_healthy{container="cache"} 0');
    m.setContainerHealth('web', undefined);
    expect(await m.registry.metrics()).not.toContain('container="web"');
  });
});
