/**
 * Update windows (`[updates] windows = ["Mon-Fri 02:00-04:00", "Sun 22:00-02:00"]`): the times,
 * on the device's local clock, at which berth may restart a running container for an update.
 *
 * A window is a wall-clock interval: it is open while the local clock shows a listed day and a
 * time from its start (inclusive) to its end (exclusive). An end at or before the start means the
 * window runs past midnight into the next day ("Sun 22:00-02:00" closes Monday 02:00). With no
 * windows configured, updates are always allowed.
 *
 * Around a daylight-saving change the local clock jumps, and the window follows the clock: a
 * window the clock skips over entirely (02:00-02:30 on a spring-forward night) does not open that
 * day, one the clock jumps into opens at the jump, and one whose hour repeats stays open for both.
 * Time zone arithmetic (offsets and their transitions) is Temporal's, from `temporal-polyfill`
 * until Node ships Temporal unflagged.
 */
import { createRequire } from 'node:module';
import type { Temporal as TemporalApi } from 'temporal-polyfill';
import { BerthError, invalidArgument } from '../errors.ts';

let loaded: typeof TemporalApi | undefined;
/**
 * temporal-polyfill, loaded at the first time zone question: a device without update windows never
 * asks one, and its daemon does not carry the polyfill (about 2.5 MiB resident).
 */
function temporal(): typeof TemporalApi {
  loaded ??= (createRequire(import.meta.url)('temporal-polyfill') as typeof import('temporal-polyfill')).Temporal;
  return loaded;
}

/** ISO weekday numbers, Temporal's `dayOfWeek`: 1 = Monday … 7 = Sunday. */
const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
const WEEK_MS = 7 * DAY_MS;

export interface UpdateWindow {
  /** The window as configured, for messages. */
  text: string;
  /** ISO weekdays (1 = Monday … 7 = Sunday) on which the window opens, ascending. */
  days: number[];
  /** Minutes after local midnight: start in 0..1439, end in 1..1440; end <= start runs past midnight. */
  startMinute: number;
  endMinute: number;
}

export type UpdateWindowState = { open: true } | { open: false; opensAt: Date };

const WINDOW_RE = /^\s*(?:(.+?)\s+)?(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/;

/**
 * Parse one window: `[DAYS ]HH:MM-HH:MM`. DAYS is a comma list of days (Mon … Sun, any case) and
 * ranges (`Mon-Fri`, `Fri-Mon` wraps the week; spaces around `,` and `-` are allowed); without DAYS the window opens every day. The end
 * may be `24:00`. Throws InvalidArgument naming `what` and the offending text.
 */
export function parseUpdateWindow(text: string, what = 'update window'): UpdateWindow {
  const bad = (why: string) =>
    invalidArgument(`${what}: "${text}" is not an update window: ${why} (examples: "Mon-Fri 02:00-04:00", "Sun 22:00-02:00", "03:00-05:00")`);
  const m = WINDOW_RE.exec(text);
  if (!m) throw bad('expected [DAYS ]HH:MM-HH:MM');
  const days = m[1] === undefined ? [1, 2, 3, 4, 5, 6, 7] : parseDays(m[1].replace(/\s*([,-])\s*/g, '$1'), bad);
  const startMinute = parseClock(m[2]!, false, bad);
  const endMinute = parseClock(m[3]!, true, bad);
  if (startMinute === endMinute % (24 * 60) && endMinute !== 24 * 60) {
    throw bad('it starts and ends at the same time (a whole day is 00:00-24:00)');
  }
  return { text, days, startMinute, endMinute };
}

function parseDays(spec: string, bad: (why: string) => Error): number[] {
  const days = new Set<number>();
  for (const item of spec.split(',')) {
    const [from, to, extra] = item.split('-');
    if (extra !== undefined) throw bad(`"${item}" is not a day or a range of days`);
    const a = dayNumber(from!, bad);
    const b = to === undefined ? a : dayNumber(to, bad);
    // A range that goes past Sunday wraps to Monday: Fri-Mon is Fri, Sat, Sun, Mon.
    for (let d = a, n = 0; n < 7; d = (d % 7) + 1, n++) {
      days.add(d);
      if (d === b) break;
    }
  }
  return [...days].sort((x, y) => x - y);
}

function dayNumber(name: string, bad: (why: string) => Error): number {
  const i = DAY_NAMES.findIndex((d) => d.toLowerCase() === name.toLowerCase());
  if (i < 0) throw bad(`unknown day "${name}" (days are ${DAY_NAMES.join(', ')})`);
  return i + 1;
}

function parseClock(hhmm: string, isEnd: boolean, bad: (why: string) => Error): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  if (isEnd && h === 24 && m === 0) return 24 * 60;
  if (h > 23 || m > 59) throw bad(`"${hhmm}" is not a time of day (00:00 to 23:59${isEnd ? ', or 24:00 as an end' : ''})`);
  return h * 60 + m;
}

/** The windows as intervals of the local week, in ms after Monday 00:00; an end may pass the week's end. */
function weekIntervals(windows: readonly UpdateWindow[]): { start: number; end: number }[] {
  return windows.flatMap((w) => {
    const length = (w.endMinute - w.startMinute + 24 * 60) % (24 * 60) || 24 * 60;
    return w.days.map((d) => {
      const start = (d - 1) * DAY_MS + w.startMinute * MINUTE_MS;
      return { start, end: start + length * MINUTE_MS };
    });
  });
}

/** Position of a local date-time in its week: ms after Monday 00:00. */
function weekPosition(z: TemporalApi.ZonedDateTime): number {
  return (z.dayOfWeek - 1) * DAY_MS + ((z.hour * 60 + z.minute) * 60 + z.second) * 1000 + z.millisecond;
}

/**
 * The device's time zone: TZ if set, else the system's (/etc/localtime), as Node's Date sees it.
 * A zone Temporal does not know (an empty or POSIX-rule TZ, which Node's Date also treats as UTC)
 * is UTC.
 */
export function localTimeZone(): string {
  const Temporal = temporal();
  const id = Temporal.Now.timeZoneId();
  try {
    Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(id);
    return id;
  } catch {
    return 'UTC';
  }
}

/**
 * Whether updates may restart containers at `now`, and if not, the exact instant the next window
 * opens. PURE given `zone` (default: the device's, see `localTimeZone`, asked only when there are windows).
 */
export function updateWindowState(windows: readonly UpdateWindow[], now: Date, zone?: string): UpdateWindowState {
  if (windows.length === 0) return { open: true };
  const timeZone = zone ?? localTimeZone();
  const Temporal = temporal();
  const intervals = weekIntervals(windows);
  const isOpenAt = (pos: number) => intervals.some((i) => (pos >= i.start && pos < i.end) || pos + WEEK_MS < i.end);
  let t = now.getTime();
  // Walk the stretches of constant UTC offset: within one, the local clock runs with real time,
  // so the next opening is plain arithmetic; at a transition the clock jumps and may land inside
  // a window. Every window opens at least weekly, and a week holds at most a few transitions.
  for (let stretch = 0; stretch < 32; stretch++) {
    const z = Temporal.Instant.fromEpochMilliseconds(t).toZonedDateTimeISO(timeZone);
    const pos = weekPosition(z);
    if (isOpenAt(pos)) return t === now.getTime() ? { open: true } : { open: false, opensAt: new Date(t) };
    const wait = Math.min(...intervals.map((i) => (i.start - pos + WEEK_MS) % WEEK_MS));
    const transition = z.getTimeZoneTransition('next')?.epochMilliseconds;
    if (transition === undefined || t + wait < transition) return { open: false, opensAt: new Date(t + wait) };
    t = transition;
  }
  // Unreachable: every window opens weekly and no zone changes offset dozens of times a week.
  throw new BerthError('Internal', `update windows ${windows.map((w) => `"${w.text}"`).join(', ')} never open in time zone ${timeZone}`);
}
