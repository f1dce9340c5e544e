/**
 * The webhook's sender (src/notify) against a node:http receiver on loopback, metadata.db in a
 * temporary directory (`--dir` to choose its filesystem: the default is the OS's tmpdir):
 * - drain: N events queued while the receiver is down, then delivered: events per second, and how
 *   many times the cursor was saved meanwhile (the sender's only writes);
 * - latency: one event, the sender woken as the daemon wakes it after a turn, until the receiver
 *   has it (median of 20);
 * - idle: whether metadata.db was written at all during 10 s with nothing to send;
 * - the whole notifier as `berth run` starts it (the sender, woken every 2 s between turns to look
 *   for events and judge the device status), idle for 10 s beside 30 objects and an applied generation of 30 containers: the
 *   CPU time this process used, and whether metadata.db was written.
 * Prints the load average, since the machine may be shared.
 *
 *   node_modules/.bin/node bench/notify.ts [--events 1000] [--dir /mnt/tmpfs]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { configFromObject } from '../src/config/config.ts';
import { silentLogger } from '../src/log.ts';
import { Metadata } from '../src/metadata/metadata.ts';
import { EventQueue } from '../src/notify/event-queue.ts';
import { startNotifier } from '../src/notify/notifier.ts';
import { WebhookSender } from '../src/notify/sender.ts';
import { openWebhook } from '../src/notify/webhook.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
};
const n = Number(arg('--events', '1000'));
const dir = mkdtempSync(join(arg('--dir', tmpdir()), 'berth-bench-notify-'));
const md = Metadata.open(join(dir, 'metadata.db'));
// data_version differs after another connection committed (a yes/no, not a count); the cursor saves are counted where they are made.
const watcher = new DatabaseSync(join(dir, 'metadata.db'), { readOnly: true });
const dataVersion = () => (watcher.prepare('PRAGMA data_version').get() as { data_version: number }).data_version;
let cursorSaves = 0;
const events = {
  eventsAfter: md.eventsAfter.bind(md),
  lastEventId: md.lastEventId.bind(md),
  getSetting: md.getSetting.bind(md),
  setSetting: (k: string, v: string) => {
    cursorSaves++;
    md.setSetting(k, v);
  },
};

let received = 0;
let onReceive = () => {};
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    res.writeHead(204).end();
    onReceive();
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
const config = configFromObject({ notify: { url, queue_size: 1000 } }).notify!;
const webhook = await openWebhook(config);
const sender = new WebhookSender({
  queue: new EventQueue(events, config.queueSize),
  webhook,
  device: 'bench',
  queueSize: config.queueSize,
  retryBackoffMaxMs: 1000,
  log: silentLogger(),
});
const addEvent = (i: number) =>
  md.addEvent({ object: { kind: 'Container', name: `c${i % 10}` }, type: 'Normal', reason: 'Created', message: `Container c${i % 10}: created (event ${i})` });

for (let i = 0; i < n; i++) addEvent(i);
const ac = new AbortController();
const s0 = cursorSaves;
const t0 = performance.now();
const drained = new Promise<void>((r) => (onReceive = () => received === n && r()));
const done = sender.run(ac.signal);
await drained;
const drainMs = performance.now() - t0;
await sleep(50); // the save after the queue ran empty
const drainSaves = cursorSaves - s0;

const latencies: number[] = [];
for (let i = 0; i < 20; i++) {
  await sleep(20);
  const got = new Promise<void>((r) => (onReceive = r));
  const t = performance.now();
  addEvent(n + i);
  sender.wake();
  await got;
  latencies.push(performance.now() - t);
}
latencies.sort((a, b) => a - b);

await sleep(100);
const idle0 = dataVersion();
await sleep(10_000);
const idleWrote = dataVersion() !== idle0;

ac.abort();
await done;
await webhook.close();

for (let i = 0; i < 30; i++) md.setStatus({ kind: 'Container', name: `c${i}`, state: 'Ready', reason: 'UpToDate', message: 'running' });
const containers = Array.from({ length: 30 }, (_, i) => ({
  kind: 'Container',
  metadata: { name: `c${i}` },
  spec: { image: 'registry.example/app:1', command: ['/bin/app', '--serve'], env: { A: 'x'.repeat(200) } },
}));
md.addGeneration({ revision: '3f2a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b', desired: { containers }, result: 'applied' });
const stopNotifier = new AbortController();
const notifier = (await startNotifier(
  { config: configFromObject({ device: { name: 'bench' }, notify: { url } }), log: silentLogger(), metadata: md },
  stopNotifier.signal,
))!;
notifier.afterTurn();
await sleep(500);
const v0 = dataVersion();
const cpuOf10s = async () => {
  const cpu0 = process.cpuUsage();
  await sleep(10_000);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000;
};
const notifierCpu = await cpuOf10s();
const notifierWrote = dataVersion() !== v0;
await notifier.stop();
const baselineCpu = await cpuOf10s(); // the same process with nothing running: timers, GC
server.close();
watcher.close();
md.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  `drain: ${n} events in ${drainMs.toFixed(0)} ms (${((n / drainMs) * 1000).toFixed(0)} events/s), ${drainSaves} cursor saves (the only writes: each event was written once, when it happened)`,
);
console.log(`latency, event written → at the receiver (sender woken): median ${latencies[10]!.toFixed(1)} ms, max ${latencies[19]!.toFixed(1)} ms`);
console.log(`idle 10 s: ${idleWrote ? 'metadata.db was written' : 'nothing written to metadata.db'}`);
console.log(
  `notifier idle 10 s: ${notifierCpu.toFixed(0)} ms CPU (the process alone, after it stopped: ${baselineCpu.toFixed(0)} ms), ${notifierWrote ? 'metadata.db was written' : 'nothing written to metadata.db'}`,
);
console.log(
  `load average: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; metadata.db under ${arg('--dir', tmpdir())}`,
);
