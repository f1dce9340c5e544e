/**
 * Pull + unpack of the lab's `debian:multi` and `debian:multi-zstd` from an empty root: berth
 * against containerd (`ctr images pull`, a containerd of its own started fresh before each of its
 * runs, test/lab/containerd.ts), same loopback registry (test/lab/lab.ts), same machine, alternating runs, `sync` before each. Reports medians, the
 * ratio berth/containerd (goal ≤ 0.5) and peak RSS (berth: the process's maxRSS; containerd: the
 * daemon's VmHWM plus ctr's maxRSS).
 *
 *   node_modules/.bin/node bench/unpack.ts [--runs 5] [--tmpfs] [--snapshotter overlayfs] [--parallelism 2] [--no-sync] [--workers] [refs…]
 *
 * Run with `--child ROOT REF …` it is the berth side of one run (a process of its own, so RSS and
 * start-up are measured as a user would see them).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startContainerd, type RunningContainerd } from '../test/lab/containerd.ts';
import { LAB_IMAGES, startLab, type LabImage } from '../test/lab/lab.ts';
import { unmountUnder } from '../test/lab/mounts.ts';

const run = promisify(execFile);

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
}

async function child(): Promise<void> {
  const i = process.argv.indexOf('--child');
  const [root, ref] = [process.argv[i + 1]!, process.argv[i + 2]!];
  const { openContentStore } = await import('../src/content/local-store.ts');
  const { Metadata } = await import('../src/metadata/metadata.ts');
  const { pull } = await import('../src/images/pull.ts');
  const { defaultConfig } = await import('../src/config/config.ts');
  const { silentLogger } = await import('../src/log.ts');
  const { openSnapshotter } = await import('../src/snapshots/select.ts');
  const { pullUnpacker } = await import('../src/images/unpack.ts');
  const snName = arg('--snapshotter', 'overlayfs') as 'overlayfs' | 'native' | 'auto';
  mkdirSync(root, { recursive: true });
  const config = defaultConfig({ root, snapshotter: snName });
  const store = await openContentStore(root);
  const metadata = Metadata.open(`${root}/metadata.db`);
  const sn = await openSnapshotter(root, snName);
  const layers: Array<{ i: number; ms: number }> = [];
  await pull({
    ref,
    config,
    log: silentLogger(),
    store,
    metadata,
    unpack: pullUnpacker(sn, {
      parallelism: Number(arg('--parallelism', '2')),
      workers: process.argv.includes('--workers'),
      sync: !process.argv.includes('--no-sync'),
      onLayer: (e) => e.ms !== undefined && layers.push({ i: e.index, ms: Math.round(e.ms) }),
    }),
  });
  metadata.close();
  await sn.close();
  process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, layers })}\n`);
}

async function timed(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: opts.cwd });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve({ ms: performance.now() - t0, stdout }) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

async function berthRun(root: string, ref: string): Promise<{ ms: number; rssMiB: number; layers: unknown }> {
  await unmountUnder(root);
  rmSync(root, { recursive: true, force: true });
  await run('sync');
  const extra = process.argv.slice(2).filter((a, i, all) => a.startsWith('--') && a !== '--runs' && all[i - 1] !== '--runs');
  const passthrough: string[] = [];
  for (const flag of ['--snapshotter', '--parallelism']) if (process.argv.includes(flag)) passthrough.push(flag, arg(flag, ''));
  if (extra.includes('--no-sync')) passthrough.push('--no-sync');
  if (extra.includes('--workers')) passthrough.push('--workers');
  const r = await timed(process.execPath, [new URL(import.meta.url).pathname, '--child', root, ref, ...passthrough]);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  return { ms: r.ms, rssMiB: out.maxRssKiB / 1024, layers: out.layers };
}

/** One containerd run, from an empty root: a fresh containerd (not timed), then `ctr images pull`. */
async function containerdRun(dir: string, ref: string): Promise<{ ms: number; rssMiB: number }> {
  const ctrd: RunningContainerd = await startContainerd(dir);
  try {
    await run('sync');
    const t0 = performance.now();
    const r = await new Promise<{ maxRssKiB: number }>((resolve, reject) => {
      const p = spawn('ctr', ['--address', ctrd.address, 'images', 'pull', '--plain-http', ref], { stdio: 'ignore' });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve({ maxRssKiB: 0 }) : reject(new Error(`ctr pull exited ${code}`))));
    });
    const ms = performance.now() - t0;
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ctrd.pid}/status`, 'utf8'));
    return { ms, rssMiB: (Number(hwm?.[1] ?? 0) + r.maxRssKiB) / 1024 };
  } finally {
    await ctrd.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const runs = Number(arg('--runs', '5'));
  const refs = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--runs') && !['--snapshotter', '--parallelism'].includes(all[i - 1] ?? ''));
  const list = (refs.length ? refs : ['debian:multi', 'debian:multi-zstd']) as LabImage[];
  const unknown = list.filter((r) => !LAB_IMAGES.includes(r));
  if (unknown.length) throw new Error(`not a lab image: ${unknown.join(', ')} (lab images: ${LAB_IMAGES.join(', ')})`);
  const lab = await startLab({ images: list, log: (m) => console.log(m) });
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-unpack-'));
  const root = join(work, 'root');
  const ctrdDir = join(work, 'ctrd');
  // --tmpfs: both sides on a fresh tmpfs, which measures the software rather than the disk (on
  // this shared machine ext4 inode allocation dominates and swings run to run; see the report).
  const tmpfs = process.argv.includes('--tmpfs');
  if (tmpfs) await run('mount', ['-t', 'tmpfs', '-o', 'size=4g,mode=0700', 'tmpfs', work]);
  try {
    await measure(list, runs, lab.ref, root, ctrdDir, tmpfs);
  } finally {
    // Leave nothing running or mounted.
    await lab.stop();
    await unmountUnder(`${work}/`);
    if (tmpfs) await run('umount', [work]).catch(() => run('umount', ['-l', work]));
    rmSync(work, { recursive: true, force: true });
  }
}

async function measure(list: LabImage[], runs: number, labRef: (image: LabImage) => string, root: string, ctrdDir: string, tmpfs: boolean): Promise<void> {
  const summary = [];
  for (const image of list) {
    const ref = labRef(image);
    const b: number[] = [];
    const c: number[] = [];
    let bRss = 0;
    let cRss = 0;
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so drift in machine load hits both alike.
      const order = i % 2 ? ['c', 'b'] : ['b', 'c'];
      for (const who of order) {
        if (who === 'b') {
          const r = await berthRun(root, ref);
          b.push(r.ms);
          bRss = Math.max(bRss, r.rssMiB);
          console.log(`${image} run ${i + 1} berth       ${(r.ms / 1000).toFixed(2)} s  rss ${r.rssMiB.toFixed(0)} MiB  layers ${JSON.stringify(r.layers)}`);
        } else {
          const r = await containerdRun(ctrdDir, ref);
          c.push(r.ms);
          cRss = Math.max(cRss, r.rssMiB);
          console.log(`${image} run ${i + 1} containerd  ${(r.ms / 1000).toFixed(2)} s  rss ${r.rssMiB.toFixed(0)} MiB`);
        }
      }
    }
    summary.push({ ref: image, berthMedianS: +(median(b) / 1000).toFixed(2), containerdMedianS: +(median(c) / 1000).toFixed(2), ratio: +(median(b) / median(c)).toFixed(2), berthPeakRssMiB: Math.round(bRss), containerdPeakRssMiB: Math.round(cRss) });
  }
  console.log(`storage: ${tmpfs ? 'tmpfs' : 'disk'}; runs: ${runs}`);
  console.table(summary);
}

if (process.argv.includes('--child')) await child();
else await main();
