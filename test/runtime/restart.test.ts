import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { TaskMonitor, type Clock, type MonitorEvent } from '../../src/runtime/monitor.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, request, runtimeFixture, until } from './helpers.ts';

/** Timers that fire only when the test advances time. */
class FakeClock implements Clock {
  t = 1_000_000;
  timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;
  now() { return this.t; }
  setTimeout(fn: () => void, ms: number) { const id = ++this.seq; this.timers.push({ at: this.t + ms, fn, id }); return id; }
  clearTimeout(h: unknown) { this.timers = this.timers.filter((x) => x.id !== h); }
  advance(ms: number) {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const d of due) d.fn();
  }
  pendingDelays() { return this.timers.map((x) => x.at - this.t).sort((a, b) => a - b); }
}

describe('TaskMonitor applies the policy with backoff (real runc, injected clock)', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  const id = String(process.pid);

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('restart'));
  });
  afterAll(async () => cleanup(rt, root));

  const exitedTask = (name: string) =>
    until(async () => { const s = await rt.status(name); return s.state === 'exited' && s; }, 10_000, `${name} exit`);

  it('Always: restarts after 10 s, then 20 s, counting restarts, keeping the container', async () => {
    const name = `always-${id}`;
    const clock = new FakeClock();
    const events: MonitorEvent[] = [];
    const mon = new TaskMonitor({ runtime: rt, clock, watch: false, pollIntervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo run; exit 3'], restartPolicy: 'Always' }));
    await rt.start(name);
    await mon.start();
    try {
      await exitedTask(name);
      await mon.check();
      expect(events.filter((e) => e.type === 'exit')).toHaveLength(1);
      const rec = await rt.readRecord(name);
      expect(rec.lastExit!.exitCode).toBe(3);
      expect(rec.nextRestartAt).toBe(new Date(clock.now() + 10_000).toISOString());
      expect(clock.pendingDelays()).toContain(10_000);
      clock.advance(9_999);
      expect(events.some((e) => e.type === 'restarted')).toBe(false);
      clock.advance(1);
      await until(async () => events.some((e) => e.type === 'restarted'), 10_000, 'restart');
      expect((await rt.readRecord(name)).restartCount).toBe(1);
      await exitedTask(name);
      await mon.check();
      expect(events.filter((e) => e.type === 'exit')).toHaveLength(2);
      expect(clock.pendingDelays()).toContain(20_000);
      await mon.check(); // the same exit is never handled twice
      expect(events.filter((e) => e.type === 'exit')).toHaveLength(2);
      clock.advance(20_000);
      await until(async () => events.filter((e) => e.type === 'restarted').length === 2, 10_000, 'second restart');
      expect((await rt.readRecord(name)).restartCount).toBe(2);
    } finally {
      mon.stop();
      await rt.delete(name, { gracePeriodMs: 0 });
    }
  });

  it('OnFailure: no restart after exit 0; Never: no restart after a failure', async () => {
    const clock = new FakeClock();
    const events: MonitorEvent[] = [];
    const mon = new TaskMonitor({ runtime: rt, clock, watch: false, pollIntervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    const ok = `onfail-${id}`, bad = `never-${id}`;
    await rt.create(request(ok, bindRootfs(rootfs), { args: ['/bin/true'], restartPolicy: 'OnFailure' }));
    await rt.create(request(bad, bindRootfs(rootfs), { args: ['/bin/false'], restartPolicy: 'Never' }));
    await rt.start(ok);
    await rt.start(bad);
    await exitedTask(ok);
    await exitedTask(bad);
    await mon.start();
    try {
      const exits = events.filter((e): e is Extract<MonitorEvent, { type: 'exit' }> => e.type === 'exit' && (e.name === ok || e.name === bad));
      expect(exits.map((e) => [e.name, e.decision.restart]).sort()).toEqual([[bad, false], [ok, false]].sort());
      expect(clock.timers.length).toBe(1); // only the poll timer
      expect((await rt.readRecord(bad)).restartDecision).toBe('failed with exit code 1; restartPolicy Never');
      clock.advance(600_000);
      expect((await rt.status(ok)).state).toBe('exited');
    } finally {
      mon.stop();
    }
  });

  it('OnFailure restarts a failed task; the file watcher notices the exit without a poll', async () => {
    const name = `watch-${id}`;
    const clock = new FakeClock();
    const events: MonitorEvent[] = [];
    const mon = new TaskMonitor({ runtime: rt, clock, watch: true, pollIntervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'sleep 0.3; exit 9'], restartPolicy: 'OnFailure' }));
    await mon.start();
    try {
      await rt.start(name);
      const e = await until(async () => events.find((x) => x.type === 'exit' && x.name === name), 10_000, 'exit event');
      expect(e).toMatchObject({ type: 'exit', exit: { exitCode: 9 }, decision: { restart: true, delayMs: 10_000 } });
    } finally {
      mon.stop();
    }
  });

  it('a stopped container is never restarted by policy', async () => {
    const name = `stopped-${id}`;
    const clock = new FakeClock();
    const events: MonitorEvent[] = [];
    const mon = new TaskMonitor({ runtime: rt, clock, watch: false, pollIntervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sleep', '60'], restartPolicy: 'Always' }));
    await rt.start(name);
    await rt.stop(name, { gracePeriodMs: 100 });
    await mon.start();
    mon.stop();
    expect(events.filter((e) => e.name === name)).toEqual([]);
    expect((await rt.status(name)).state).toBe('stopped');
  });
});
