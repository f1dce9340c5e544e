/**
 * Soak: the demo (`manifests/`: busybox httpd and a ticker, imported offline) under `bin/berth run`,
 * as `npm start` runs it, for a while; samples the daemon's resident memory and the bytes it makes
 * the kernel write to storage (/proc/PID/io write_bytes: its SQLite database and WAL, logs,
 * state files; the containers' own writes are not the daemon's). Prints the RSS at warm-up and at
 * the end, its drift, and the daemon's write bytes a minute after warm-up. Goals (issue 14): RSS
 * ≤ 60 MiB, drift ≤ 2 MiB, writes ≤ 64 KiB a minute.
 *
 *   node_modules/.bin/node bench/soak.ts [--duration 10m] [--warmup 2m] [--every 30s] [--node-flags "…"]
 *       [--resync 30s]
 *
 * `--resync` sets the daemon's `[reconcile] resync_interval` (30 s by default): `--resync 1s` runs
 * thirty times the turns of a day's soak in the same time, an accelerated soak for what grows with
 * each turn (not for what grows with time alone). Interrupted (Ctrl-C, SIGTERM), it still stops
 * the daemon and removes the containers and the root.
 *
 * Durations: 90s, 10m, 24h. `--node-flags` runs berth's entry point with these node flags instead
 * of bin/berth's (to price a flag; bench/pull.ts has the same option). The CPU column is the
 * daemon's own user+system time (/proc/PID/stat), what an idle daemon costs besides memory. The root is a temp dir under $TMPDIR; the web container listens on a
 * free loopback port instead of 8080. Everything it made is removed at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { unmountUnder } from '../test/lab/mounts.ts';
import { berthCommand } from './berth-command.ts';

const args = process.argv.slice(2);
const option = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text);
  if (!m) throw new Error(`${text}: not a duration (90s, 10m, 24h)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}
const DURATION = seconds(option('--duration', '10m'));
const WARMUP = Math.min(seconds(option('--warmup', '2m')), DURATION / 2);
const EVERY = seconds(option('--every', '30s'));
const NODE_FLAGS = option('--node-flags', '');
const RESYNC = option('--resync', '');
if (RESYNC) seconds(RESYNC); // the same duration syntax, checked before anything starts

const TOP = join(import.meta.dirname, '..');
const BERTH = join(TOP, 'bin/berth');

interface Sample {
  at: number;
  rssKiB: number;
  anonKiB: number;
  fileKiB: number;
  writeBytes: number;
  /** user + system CPU seconds of the daemon so far */
  cpu: number;
}

function sample(pid: number, t0: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  // utime and stime, fields 14 and 15 of /proc/PID/stat, counted after the command's closing parenthesis.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [utime, stime] = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 13)
    .map(Number);
  return {
    at: (performance.now() - t0) / 1000,
    rssKiB: kib('VmRSS'),
    anonKiB: kib('RssAnon'),
    fileKiB: kib('RssFile'),
    writeBytes: Number(/^write_bytes: (\d+)/m.exec(io)?.[1]),
    cpu: (utime! + stime!) / CLOCK_TICKS,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The kernel's clock ticks a second, the unit of /proc/PID/stat's CPU times. */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

const mib = (kib: number) => (kib / 1024).toFixed(1);

async function main(): Promise<void> {
  if (DURATION === 0) return console.log('soak skipped (--duration 0)');
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-soak-'));
  const root = join(work, 'root');
  const manifests = join(work, 'manifests');
  mkdirSync(join(root, 'import'), { recursive: true, mode: 0o700 });
  mkdirSync(manifests);
  // The demo as npm start provisions it: an OCI archive in the import directory.
  const built = spawnSync(process.execPath, [join(TOP, 'scripts/build-demo-image.ts'), join(root, 'import/berth-demo-busybox.oci.tar')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`build-demo-image: ${built.stderr}`);
  const port = await freePort();
  for (const f of readdirSync(join(TOP, 'manifests')))
    writeFileSync(join(manifests, f), readFileSync(join(TOP, 'manifests', f), 'utf8').replaceAll('8080', String(port)));

  const config = join(work, 'config.toml');
  writeFileSync(config, RESYNC ? `[reconcile]\nresync_interval = "${RESYNC}"\n` : '');
  const [command, ...before] = berthCommand(TOP, NODE_FLAGS);
  const daemon = spawn(command!, [...before, '--root', root, '--config', config, '--log-level', 'warn', 'run', '-f', manifests], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let interrupt!: () => void;
  const interrupted = new Promise<'interrupted'>((resolve) => (interrupt = () => resolve('interrupted')));
  // `on`, not `once`: a second signal (timeout(1) signals the whole group, Ctrl-C twice) must not
  // kill the soak halfway through its clean-up. The daemon has a process group of its own (below),
  // so a terminal's Ctrl-C reaches only the soak, which stops the daemon itself.
  process.on('SIGINT', interrupt).on('SIGTERM', interrupt);
  let stderr = '';
  daemon.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
  const t0 = performance.now();
  try {
    await sleep(1000);
    const cmdline = readFileSync(`/proc/${daemon.pid}/cmdline`, 'utf8').split('\0').join(' ');
    console.log(
      `soak: ${cmdline}\n  root ${root}, web on 127.0.0.1:${port}, ${DURATION} s, warm-up ${WARMUP} s, a sample every ${EVERY} s, resync every ${RESYNC || '30s'}`,
    );
    const samples: Sample[] = [];
    let warm: Sample | undefined;
    for (let next = 0; next <= DURATION; next += EVERY) {
      const wait = next - (performance.now() - t0) / 1000;
      const code = await Promise.race([sleep(Math.max(0, wait) * 1000).then(() => undefined), exited, interrupted]);
      if (code === 'interrupted') throw new Error('interrupted: stopping the daemon and removing what the soak made');
      if (code !== undefined) throw new Error(`berth run exited (${code}) after ${((performance.now() - t0) / 1000).toFixed(0)} s:\n${stderr}`);
      const s = sample(daemon.pid!, t0);
      samples.push(s);
      if (!warm && s.at >= WARMUP) warm = s;
      const perMinute = warm && s !== warm ? ((s.writeBytes - warm.writeBytes) / 1024 / ((s.at - warm.at) / 60)).toFixed(1) : '-';
      console.log(
        `  ${s.at.toFixed(0).padStart(6)} s  RSS ${mib(s.rssKiB)} MiB (anon ${mib(s.anonKiB)}, file ${mib(s.fileKiB)})  written ${(s.writeBytes / 1024).toFixed(0)} KiB, ${perMinute} KiB/min since warm-up  CPU ${s.cpu.toFixed(2)} s  load ${loadavg()[0]!.toFixed(1)}`,
      );
    }
    const end = samples.at(-1)!;
    const after = samples.filter((s) => s.at >= warm!.at);
    const minutes = (end.at - warm!.at) / 60;
    console.table([
      {
        'RSS at warm-up MiB': +mib(warm!.rssKiB),
        'RSS at end MiB': +mib(end.rssKiB),
        'drift MiB': +mib(end.rssKiB - warm!.rssKiB),
        'max after warm-up MiB': +mib(Math.max(...after.map((s) => s.rssKiB))),
        'writes KiB/min': +((end.writeBytes - warm!.writeBytes) / 1024 / minutes).toFixed(1),
        'CPU ms/min': +(((end.cpu - warm!.cpu) * 1000) / minutes).toFixed(0),
        'minutes measured': +minutes.toFixed(1),
      },
    ]);
    console.log(
      `storage: ${tmpdir()} (${spawnSync('findmnt', ['-no', 'FSTYPE,OPTIONS', '--target', tmpdir()], { encoding: 'utf8' }).stdout.trim()}); load average now ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    daemon.kill('SIGTERM');
    await exited;
    // The containers outlive the daemon by design: remove them, then everything the soak made.
    const emptied = join(work, 'empty');
    mkdirSync(emptied, { recursive: true });
    spawnSync(BERTH, ['--root', root, 'apply', '--allow-empty', '--no-wait', '-f', emptied], { stdio: 'ignore' });
    await unmountUnder(root);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
