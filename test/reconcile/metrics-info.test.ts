/** `berth_info{device, revision}`: one series, replaced (not added to) when the revision changes. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/reconcile/metrics.ts';

describe('berth_info', () => {
  it('names the device and the revision applied, one series at a time', async () => {
    const m = new Metrics();
    m.setInfo('kiosk-7', '3f2a9c0d');
    expect(await m.registry.metrics()).toMatch(/^berth_info\{device="kiosk-7",revision="3f2a9c0d"\} 1$/m);
    m.setInfo('kiosk-7', 'b71e0a55');
    const text = await m.registry.metrics();
    expect(text.match(/^berth_info\{/gm)).toHaveLength(1);
    expect(text).toMatch(/^berth_info\{device="kiosk-7",revision="b71e0a55"\} 1$/m);
    m.setInfo('kiosk-7', undefined);
    expect(await m.registry.metrics()).toMatch(/^berth_info\{device="kiosk-7",revision=""\} 1$/m);
  });
});
