import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseUpdateWindow, updateWindowState, type UpdateWindow } from '../../src/config/update-window.ts';
import { BerthError } from '../../src/errors.ts';

const parse = (...texts: string[]): UpdateWindow[] => texts.map((t) => parseUpdateWindow(t));
const at = (iso: string) => new Date(iso);

/** The state as ISO text, so a table row reads as what a user would check. */
function state(windows: UpdateWindow[], iso: string, zone: string): string {
  const s = updateWindowState(windows, at(iso), zone);
  return s.open ? 'open' : s.opensAt.toISOString();
}

describe('parseUpdateWindow', () => {
  it.each([
    ['Mon-Fri 02:00-04:00', [1, 2, 3, 4, 5], 120, 240],
    ['Sat 00:00-06:00', [6], 0, 360],
    ['Sun 22:00-02:00', [7], 1320, 120],
    ['03:00-05:00', [1, 2, 3, 4, 5, 6, 7], 180, 300],
    ['mon,wed,FRI 1:30-2:00', [1, 3, 5], 90, 120],
    ['Fri-Mon 00:00-24:00', [1, 5, 6, 7], 0, 1440],
    ['Sun-Sun 23:59-00:00', [7], 1439, 0],
    ['  Tue,Tue-Wed   06:15 - 07:45 ', [2, 3], 375, 465],
    ['Mon, Wed - Thu 06:00-07:00', [1, 3, 4], 360, 420],
  ])('%s', (text, days, start, end) => {
    expect(parseUpdateWindow(text)).toEqual({ text, days, startMinute: start, endMinute: end });
  });

  it.each([
    ['Mon-Fry 02:00-04:00', 'unknown day "Fry"'],
    ['Mon 25:00-26:00', '"25:00" is not a time of day'],
    ['Mon 02:60-03:00', '"02:60" is not a time of day'],
    ['Mon 24:00-01:00', '"24:00" is not a time of day'],
    ['Mon 02:00-02:00', 'starts and ends at the same time'],
    ['00:00-00:00', 'starts and ends at the same time'],
    ['Mon 02:00', 'expected [DAYS ]HH:MM-HH:MM'],
    ['', 'expected [DAYS ]HH:MM-HH:MM'],
    ['Mon-Tue-Wed 01:00-02:00', '"Mon-Tue-Wed" is not a day or a range of days'],
    ['Mon,,Tue 01:00-02:00', 'unknown day ""'],
    ['every day 01:00-02:00', 'unknown day "every day"'],
    ['Mon 02:00-04:00 UTC', 'expected [DAYS ]HH:MM-HH:MM'],
  ])('refuses %j, naming it and why', (text, why) => {
    let err: unknown;
    try {
      parseUpdateWindow(text, 'config: key "updates.windows[1]"');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).kind).toBe('InvalidArgument');
    expect((err as BerthError).message).toContain(`config: key "updates.windows[1]": "${text}" is not an update window`);
    expect((err as BerthError).message).toContain(why);
  });
});

describe('updateWindowState', () => {
  it('no windows: always open', () => {
    expect(updateWindowState([], at('2026-12-02T12:00:00Z'), 'UTC')).toEqual({ open: true });
  });

  // 2026-12-02 is a Wednesday.
  const office = parse('Mon-Fri 02:00-04:00', 'Sat 00:00-06:00');
  it.each([
    ['2026-12-02T03:00:00Z', 'open'],
    ['2026-12-02T02:00:00.000Z', 'open'], // the start is inside
    ['2026-12-02T03:59:59.999Z', 'open'],
    ['2026-12-02T04:00:00.000Z', '2026-12-03T02:00:00.000Z'], // the end is outside
    ['2026-12-02T01:59:59.999Z', '2026-12-02T02:00:00.000Z'],
    ['2026-12-04T05:00:00Z', '2026-12-05T00:00:00.000Z'], // Friday → Saturday's window
    ['2026-12-05T06:00:00Z', '2026-12-07T02:00:00.000Z'], // Saturday → over Sunday to Monday
    ['2026-12-06T12:34:56.789Z', '2026-12-07T02:00:00.000Z'],
  ])('weekday windows, UTC, at %s: %s', (now, expected) => {
    expect(state(office, now, 'UTC')).toBe(expected);
  });

  const lateSunday = parse('Sun 22:00-02:00');
  it.each([
    ['2026-12-06T22:00:00Z', 'open'], // Sunday 22:00
    ['2026-12-06T23:59:59Z', 'open'],
    ['2026-12-07T00:00:00Z', 'open'], // Monday, past midnight: still Sunday's window (the week wraps)
    ['2026-12-07T01:59:59.999Z', 'open'],
    ['2026-12-07T02:00:00Z', '2026-12-13T22:00:00.000Z'],
    ['2026-12-06T01:00:00Z', '2026-12-06T22:00:00.000Z'], // Sunday early: Saturday has no window to run over
    ['2026-12-05T23:00:00Z', '2026-12-06T22:00:00.000Z'],
  ])('a window past midnight (and the week end), UTC, at %s: %s', (now, expected) => {
    expect(state(lateSunday, now, 'UTC')).toBe(expected);
  });

  it.each([
    // Berlin is UTC+1 in winter: 02:00 local is 01:00Z.
    [['Mon-Fri 02:00-04:00'], '2026-12-02T01:30:00Z', 'open'],
    [['Mon-Fri 02:00-04:00'], '2026-12-02T03:00:00Z', '2026-12-03T01:00:00.000Z'],
    [['Fri-Mon 23:00-01:00'], '2026-12-07T23:30:00Z', 'open'], // Tuesday 00:30 local, Monday's window
    [['Fri-Mon 23:00-01:00'], '2026-12-08T00:00:00Z', '2026-12-11T22:00:00.000Z'], // Tuesday 01:00 → Friday 23:00
  ])('Europe/Berlin %j at %s: %s', (texts, now, expected) => {
    expect(state(parse(...texts), now, 'Europe/Berlin')).toBe(expected);
  });

  // Europe/Berlin 2026: the clock goes 02:00 CET → 03:00 CEST on Sunday 29 March (01:00Z),
  // and 03:00 CEST → 02:00 CET on Sunday 25 October (01:00Z).
  it.each([
    // Across the spring change, Monday 02:00 local is 00:00Z, not 01:00Z as in winter.
    [['Mon-Fri 02:00-04:00'], '2026-03-27T12:00:00Z', '2026-03-30T00:00:00.000Z'],
    // A window the clock skips entirely does not open that day: the next Sunday's does.
    [['Sun 02:00-02:30'], '2026-03-29T00:30:00Z', '2026-04-05T00:00:00.000Z'],
    // A window the clock jumps into opens at the jump (03:00 CEST), not at 02:30 + 1 h.
    [['Sun 02:30-04:00'], '2026-03-29T00:30:00Z', '2026-03-29T01:00:00.000Z'],
    [['Sun 02:30-04:00'], '2026-03-29T01:00:00Z', 'open'],
    // Two hours of real time from midnight to 03:00 that night, not three.
    [['03:00-04:00'], '2026-03-28T23:00:00Z', '2026-03-29T01:00:00.000Z'],
    // Autumn: 02:30-04:00 opens at 02:30 CEST, closes when the clock falls back to 02:00 CET,
    // and opens again at 02:30 CET.
    [['Sun 02:30-04:00'], '2026-10-25T00:00:00Z', '2026-10-25T00:30:00.000Z'],
    [['Sun 02:30-04:00'], '2026-10-25T00:59:59Z', 'open'],
    [['Sun 02:30-04:00'], '2026-10-25T01:15:00Z', '2026-10-25T01:30:00.000Z'],
    [['Sun 02:30-04:00'], '2026-10-25T02:59:59Z', 'open'],
    [['Sun 02:30-04:00'], '2026-10-25T03:00:00Z', '2026-11-01T01:30:00.000Z'],
    // The repeated hour is inside a 02:00-03:00 window both times.
    [['Sun 02:00-03:00'], '2026-10-25T01:30:00Z', 'open'],
    [['Sun 02:00-03:00'], '2026-10-25T02:00:00Z', '2026-11-01T01:00:00.000Z'],
  ])('Europe/Berlin across DST %j at %s: %s', (texts, now, expected) => {
    expect(state(parse(...texts), now, 'Europe/Berlin')).toBe(expected);
  });

  it('America/New_York and Australia/Lord_Howe (a half-hour change) follow their own clocks', () => {
    // New York 2026: 02:00 EST → 03:00 EDT on Sunday 8 March (07:00Z).
    expect(state(parse('Sun 02:15-02:45', 'Sun 03:30-04:00'), '2026-03-08T06:00:00Z', 'America/New_York')).toBe('2026-03-08T07:30:00.000Z');
    // Lord Howe 2026: 02:00 → 01:30 (+11 → +10:30) on Sunday 5 April (15:00Z the day before).
    expect(state(parse('Sun 01:45-02:00'), '2026-04-04T14:50:00Z', 'Australia/Lord_Howe')).toBe('open'); // 01:50 +11
    expect(state(parse('Sun 01:45-02:00'), '2026-04-04T15:00:00Z', 'Australia/Lord_Howe')).toBe('2026-04-04T15:15:00.000Z'); // 01:30 +10:30 → 01:45 again
  });

  /**
   * The property, against an independent oracle (Intl's clock, not Temporal's): for any windows on
   * 15-minute marks, any zone of a few kinds (whole-hour DST, half-hour DST, a half-hour offset, no
   * DST) and any instant, mostly around the 2026 DST changes: the state is open exactly when the
   * oracle's local clock is inside a window, and otherwise `opensAt` is the first 15-minute mark
   * after now at which the oracle says open. (These zones' offsets are multiples of 30 minutes, so
   * the open state only changes on 15-minute marks.)
   */
  it('agrees with a scan of the local clock, for any windows, zone and instant (fast-check)', () => {
    const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
    const QUARTER = 15 * 60_000;
    const formats = new Map<string, Intl.DateTimeFormat>();
    const oracleOpen = (windows: UpdateWindow[], zone: string, t: number) => {
      let fmt = formats.get(zone);
      if (!fmt)
        formats.set(zone, (fmt = new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })));
      const parts = Object.fromEntries(fmt.formatToParts(new Date(t)).map((p) => [p.type, p.value]));
      const day = DAYS.indexOf(parts.weekday!) + 1;
      const minute = Number(parts.hour) * 60 + Number(parts.minute);
      const prevDay = day === 1 ? 7 : day - 1;
      return windows.some((w) =>
        w.startMinute < w.endMinute
          ? w.days.includes(day) && minute >= w.startMinute && minute < w.endMinute
          : (w.days.includes(day) && minute >= w.startMinute) || (w.days.includes(prevDay) && minute < w.endMinute),
      );
    };
    const clock = (q: number) => `${String(Math.floor(q / 4)).padStart(2, '0')}:${String((q % 4) * 15).padStart(2, '0')}`;
    const windowText = fc
      .record({
        days: fc.option(fc.subarray(DAYS, { minLength: 1 }), { nil: undefined }),
        start: fc.integer({ min: 0, max: 95 }),
        end: fc.integer({ min: 1, max: 96 }),
      })
      .filter((w) => w.start !== w.end % 96)
      .map((w) => `${w.days ? `${w.days.join(',')} ` : ''}${clock(w.start)}-${clock(w.end)}`);
    const instant = fc.oneof(
      fc.integer({ min: Date.parse('2026-03-01T00:00:00Z'), max: Date.parse('2026-04-12T00:00:00Z') }),
      fc.integer({ min: Date.parse('2026-09-25T00:00:00Z'), max: Date.parse('2026-11-08T00:00:00Z') }),
      fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-01-01T00:00:00Z') }),
    );
    const zone = fc.constantFrom('Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'UTC');
    fc.assert(
      fc.property(fc.array(windowText, { minLength: 1, maxLength: 3 }), zone, instant, (texts, tz, now) => {
        const windows = parse(...texts);
        const got = updateWindowState(windows, new Date(now), tz);
        if (oracleOpen(windows, tz, now)) {
          expect(got).toEqual({ open: true });
          return;
        }
        let t = Math.floor(now / QUARTER) * QUARTER + QUARTER;
        while (!oracleOpen(windows, tz, t)) t += QUARTER;
        expect(got).toEqual({ open: false, opensAt: new Date(t) });
      }),
      { numRuns: 400 },
    );
  });

  it("reads the device's zone from TZ when none is given", () => {
    const module = fileURLToPath(new URL('../../src/config/update-window.ts', import.meta.url));
    const script = `
      const { localTimeZone, parseUpdateWindow, updateWindowState } = await import(${JSON.stringify(module)});
      const s = updateWindowState([parseUpdateWindow('Mon-Fri 02:00-04:00')], new Date('2026-03-27T12:00:00Z'));
      console.log(JSON.stringify({ zone: localTimeZone(), opensAt: s.opensAt }));`;
    const run = (tz: string) =>
      JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TZ: tz }, encoding: 'utf8' }));
    expect(run('Europe/Berlin')).toEqual({ zone: 'Europe/Berlin', opensAt: '2026-03-30T00:00:00.000Z' });
    expect(run('America/New_York')).toEqual({ zone: 'America/New_York', opensAt: '2026-03-30T06:00:00.000Z' });
    expect(run('UTC')).toEqual({ zone: 'UTC', opensAt: '2026-03-30T02:00:00.000Z' });
    // Zones Node's Date does not know (an empty or POSIX-rule TZ) are UTC there, and here too.
    expect(run('')).toEqual({ zone: 'UTC', opensAt: '2026-03-30T02:00:00.000Z' });
  });
});
