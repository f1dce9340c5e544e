/**
 * Two berth roots on one machine (a test or bench beside the device's berth) must not share a
 * container's cgroup when they use the same container name: each non-default root gets a cgroup
 * parent of its own; the default root keeps `/berth`.
 */
import { describe, expect, it } from 'vitest';
import { defaultCgroupParent, Runtime } from '../../src/runtime/runtime.ts';

describe('the cgroup parent', () => {
  it('is /berth for the default root and one of its own for any other root', () => {
    expect(defaultCgroupParent('/var/lib/berth')).toBe('/berth');
    expect(defaultCgroupParent('/var/lib/berth/')).toBe('/berth');
    const a = defaultCgroupParent('/tmp/root-a');
    const b = defaultCgroupParent('/tmp/root-b');
    expect(a).toMatch(/^\/berth-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    expect(Runtime.forReading({ root: '/tmp/root-a' }).cgroupParent).toBe(a);
    expect(Runtime.forReading({ root: '/tmp/root-a', cgroupParent: '/custom' }).cgroupParent).toBe('/custom');
  });
});
