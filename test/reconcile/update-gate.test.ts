import { describe, expect, it } from 'vitest';
import { parseUpdateWindow } from '../../src/config/update-window.ts';
import { elapsedText, updateGate, waitText, type UpdateGatePolicy } from '../../src/reconcile/update-gate.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
// Wednesday 2026-12-02, 20:48 UTC: the night window opens 5h12m later.
const NOW = Date.parse('2026-12-02T20:48:00Z');
const night = [parseUpdateWindow('Mon-Fri 02:00-04:00')];
const evening = [parseUpdateWindow('20:00-22:00')];

describe('updateGate', () => {
  const STAGED = 'Staged, waiting for the update window (opens in 5h12m)';
  const LOCKED = 'Waiting (update lock held by the app)';
  it.each<[string, UpdateGatePolicy, number | undefined, ReturnType<typeof updateGate>]>([
    ['no windows, no lock: go', { windows: [] }, undefined, { allowed: true }],
    ['window open, no lock: go', { windows: evening }, undefined, { allowed: true }],
    ['window closed: staged until it opens', { windows: night }, undefined, { allowed: false, reason: STAGED, until: Date.parse('2026-12-03T02:00:00Z') }],
    [
      'window closed and lock held: the window is named (it decides first)',
      { windows: night },
      NOW - MIN,
      { allowed: false, reason: STAGED, until: Date.parse('2026-12-03T02:00:00Z') },
    ],
    ['lock held, no limit: wait for its release', { windows: evening }, NOW - 5 * HOUR, { allowed: false, reason: LOCKED }],
    [
      'lock held under max_lock_hold: wait until the limit',
      { windows: [], maxLockHoldMs: 2 * HOUR },
      NOW - HOUR,
      { allowed: false, reason: LOCKED, until: NOW + HOUR },
    ],
    [
      'lock held past max_lock_hold: go, saying what was overridden',
      { windows: [], maxLockHoldMs: 2 * HOUR },
      NOW - 2 * HOUR - 30 * MIN,
      { allowed: true, override: 'update lock held for 2h30m, max_lock_hold is 2h' },
    ],
    [
      'lock held exactly max_lock_hold: go',
      { windows: [], maxLockHoldMs: 2 * HOUR },
      NOW - 2 * HOUR,
      { allowed: true, override: 'update lock held for 2h, max_lock_hold is 2h' },
    ],
    [
      'max_lock_hold 0: a held lock never waits',
      { windows: [], maxLockHoldMs: 0 },
      NOW,
      { allowed: true, override: 'update lock held for 0s, max_lock_hold is 0s' },
    ],
    ['--force: go, window closed and lock held', { windows: night, force: true }, NOW - MIN, { allowed: true }],
  ])('%s', (_what, policy, lockHeldSinceMs, expected) => {
    expect(updateGate({ timeZone: 'UTC', ...policy }, { lockHeldSinceMs }, NOW)).toEqual(expected);
  });

  it('reads the windows in the zone it is given', () => {
    // 20:48 UTC is 21:48 in Berlin: the night window opens at 01:00 UTC, 4h12m later.
    expect(updateGate({ windows: night, timeZone: 'Europe/Berlin' }, {}, NOW)).toEqual({
      allowed: false,
      reason: 'Staged, waiting for the update window (opens in 4h12m)',
      until: Date.parse('2026-12-03T01:00:00Z'),
    });
  });
});

describe('waitText', () => {
  it.each([
    [0, '1m'],
    [1, '1m'],
    [59_999, '1m'],
    [MIN, '1m'],
    [MIN + 1, '2m'],
    [59 * MIN, '59m'],
    [HOUR, '1h'],
    [5 * HOUR + 12 * MIN, '5h12m'],
    [5 * HOUR + 11 * MIN + 1, '5h12m'],
    [24 * HOUR, '1d'],
    [2 * 24 * HOUR + 3 * HOUR + 59 * MIN, '2d3h'],
  ])('%d ms: %s', (ms, text) => {
    expect(waitText(ms)).toBe(text);
  });
});

describe('elapsedText', () => {
  it.each([
    [0, '0s'],
    [59_999, '59s'],
    [MIN, '1m'],
    [2 * HOUR + 30 * MIN + 59_999, '2h30m'],
    [3 * 24 * HOUR + HOUR, '3d1h'],
  ])('%d ms: %s', (ms, text) => {
    expect(elapsedText(ms)).toBe(text);
  });
});
