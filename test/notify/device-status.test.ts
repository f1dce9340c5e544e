/**
 * The device's overall status (pure), and its record as `Device` events: one event per change,
 * none for a turn that changed nothing that counts (a message's text alone does not).
 */
import { describe, expect, it } from 'vitest';
import { Metadata, type ObjectStatus } from '../../src/metadata/metadata.ts';
import { deviceStatus, recordDeviceStatus } from '../../src/notify/device-status.ts';

const row = (kind: string, name: string, state: ObjectStatus['state'], reason = 'UpToDate', message = 'running'): ObjectStatus => ({
  kind,
  name,
  state,
  reason,
  message,
  updatedAt: new Date(0),
});

describe('deviceStatus', () => {
  it.each([
    { objects: [], state: 'Ready', notReady: '', message: /^Ready: 0 objects$/ },
    { objects: [row('Container', 'web', 'Ready'), row('Image', 'app', 'Ready')], state: 'Ready', notReady: '', message: /^Ready: 2 objects/ },
    {
      objects: [row('Container', 'web', 'Reconciling', 'Waiting', 'restart in 4s\nmore'), row('Image', 'app', 'Ready')],
      state: 'Reconciling',
      notReady: 'Container/web=Reconciling/Waiting',
      message: /^Reconciling: Container\/web Waiting: restart in 4s$/,
    },
    {
      objects: [row('Container', 'a', 'Reconciling', 'Waiting'), row('Source', 'ssh://git/fleet', 'Stalled', 'NotSigned', 'commit 3f2a not signed')],
      state: 'Stalled',
      notReady: 'Source/ssh://git/fleet=Stalled/NotSigned,Container/a=Reconciling/Waiting',
      message: /^Stalled: Source\/ssh:\/\/git\/fleet NotSigned: commit 3f2a not signed \(and 1 more not Ready\)$/,
    },
  ])('$state from $notReady', ({ objects, state, notReady, message }) => {
    const s = deviceStatus(objects as ObjectStatus[], undefined);
    expect(s.state).toBe(state);
    expect(s.details).toEqual({ state, generation: '', revision: '', notReady });
    expect(s.message).toMatch(message);
  });

  it('names the generation and revision applied', () => {
    const s = deviceStatus([], { id: 4, revision: '3f2a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b' });
    expect(s.details).toMatchObject({ generation: '4', revision: '3f2a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b' });
    expect(s.message).toBe('Ready: 0 objects (generation 4, revision 3f2a9c0d1e2f)');
  });
});

describe('recordDeviceStatus', () => {
  it('records a Device event when the status changes, and only then', () => {
    const md = Metadata.open(':memory:');
    const set = (state: ObjectStatus['state'], reason: string, message: string) => md.setStatus({ kind: 'Container', name: 'web', state, reason, message });
    set('Reconciling', 'Waiting', 'pulling');
    const first = recordDeviceStatus(md, 'kiosk-7')!;
    expect(first).toMatchObject({ object: { kind: 'Device', name: 'kiosk-7' }, type: 'Normal', reason: 'StatusChanged', details: { state: 'Reconciling' } });
    expect(first.details!.previousState).toBeUndefined();
    set('Reconciling', 'Waiting', 'pulling: 40%'); // the text alone
    expect(recordDeviceStatus(md, 'kiosk-7')).toBeUndefined();
    set('Stalled', 'StepFailed', 'create failed');
    expect(recordDeviceStatus(md, 'kiosk-7')).toMatchObject({ type: 'Warning', details: { state: 'Stalled', previousState: 'Reconciling' } });
    set('Ready', 'UpToDate', 'running');
    const g = md.addGeneration({ revision: 'abc', desired: {}, result: 'applied' });
    expect(recordDeviceStatus(md, 'kiosk-7')).toMatchObject({
      type: 'Normal',
      details: { state: 'Ready', generation: String(g.id), revision: 'abc', previousState: 'Stalled' },
    });
    expect(recordDeviceStatus(md, 'kiosk-7')).toBeUndefined();
    expect(md.listEvents({ object: { kind: 'Device', name: 'kiosk-7' } })).toHaveLength(3);
    md.close();
  });
});
