/**
 * Pull + unpack through the CLI, as a user runs it: `bin/berth pull IMAGE` (a process of its own,
 * its start-up included) against a fresh containerd's `ctr images pull`, from the same loopback
 * registry (test/lab). Each comparison alternates the two tools in one run (which goes first
 * alternates too), each from an empty root with `sync` before it, on a tmpfs this bench mounts
 * (CPU-bound: the software) and on the disk under $TMPDIR (the disk, which swings run to run:
 * compare only within one run). Prints every run, the medians, the ratio berth/containerd and the
 * peak RSS: berth's whole process (GNU time), containerd's daemon (VmHWM; the ctr client aside).
 *
 *   node_modules/.bin/node bench/pull.ts [--runs 3] [--storage tmpfs|disk|both] [--fetch-only]
 *       [--node-flags "…"] [image…]      (images: debian:multi debian:multi-zstd, the default)
 *
 * `--fetch-only`: `berth pull --no-unpack` against `ctr content fetch`. `--node-flags` runs berth's
 * entry point with these node flags instead of bin/berth's (to measure a flag's cost; see
 * docs/benchmarks.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContainerd } from '../test/lab/containerd.ts';
import { LAB_IMAGES, startLab, type LabImage } from '../test/lab/lab.ts';
import { unmountUnder } from '../test/lab/mounts.ts';

const args = process.argv.slice(2);
const option = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const RUNS = Number(option('--runs', '3'));
const STORAGE = option('--storage', 'both');
const FETCH_ONLY = args.includes('--fetch-only');
const NODE_FLAGS = option('--node-flags', '');
const valued = new Set(['--runs', '--storage', '--node-flags']);
const named = args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1] ?? ''));
const IMAGES = (named.length ? named : ['debian:multi', 'debian:multi-zstd']) as LabImage[];
for (const image of IMAGES) if (!LAB_IMAGES.includes(image)) throw new Error(`${image}: not a lab image (lab images: ${LAB_IMAGES.join(', ')})`);
if (!['tmpfs', 'disk', 'both'].includes(STORAGE)) throw new Error(`--storage ${STORAGE}: tmpfs, disk or both`);

const TOP = join(import.meta.dirname, '..');
/** How berth is started: bin/berth, or its entry point with the flags under test. */
function berthCommand(): string[] {
  if (!NODE_FLAGS) return [join(TOP, 'bin/berth')];
  const built =
    existsSync(join(TOP, 'dist/cli/main.js')) &&
    spawnSync('find', [join(TOP, 'src'), '-newer', join(TOP, 'dist/.build-stamp'), '-print', '-quit'], { encoding: 'utf8' }).stdout === '';
  return [
    process.execPath,
    '--disable-warning=ExperimentalWarning',
    ...NODE_FLAGS.split(' ').filter(Boolean),
    join(TOP, built ? 'dist/cli/main.js' : 'src/cli/main.ts'),
  ];
}

function sh(cmd: string, argv: string[]) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

/** One timed command under GNU time: wall seconds and the process's peak RSS. */
function timed(cmd: string[]): { seconds: number; rssMiB: number } {
  sh('sync', []);
  const t0 = process.hrtime.bigint();
  const r = sh('/usr/bin/time', ['-v', ...cmd]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { seconds, rssMiB: rss ? Number(rss[1]) / 1024 : NaN };
}

async function berthRun(work: string, image: string) {
  const root = join(work, 'berth-root');
  await unmountUnder(root);
  rmSync(root, { recursive: true, force: true });
  const global = ['--root', root, '--config', join(work, 'none.toml')];
  const r = timed([...berthCommand(), ...global, 'pull', ...(FETCH_ONLY ? ['--no-unpack'] : []), image]);
  const images = JSON.parse(sh(join(TOP, 'bin/berth'), [...global, 'images', '--json']).stdout);
  if (!FETCH_ONLY && !images[0]?.unpacked) throw new Error(`berth pull ${image}: not unpacked`);
  return r;
}

/** A fresh containerd (not timed), then ctr; the RSS is the daemon's peak. */
async function containerdRun(work: string, image: string) {
  const ctrd = await startContainerd(join(work, 'ctrd'));
  try {
    const r = timed(['ctr', '--address', ctrd.address, ...(FETCH_ONLY ? ['content', 'fetch'] : ['images', 'pull']), '--plain-http', image]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ctrd.pid}/status`, 'utf8'));
    return { seconds: r.seconds, rssMiB: Number(hwm?.[1] ?? NaN) / 1024 };
  } finally {
    await ctrd.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function compare(work: string, storage: string, image: LabImage, ref: string) {
  const b: number[] = [];
  const c: number[] = [];
  let bRss = 0;
  let cRss = 0;
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 ? (['containerd', 'berth'] as const) : (['berth', 'containerd'] as const);
    for (const who of order) {
      const r = who === 'berth' ? await berthRun(work, ref) : await containerdRun(work, ref);
      (who === 'berth' ? b : c).push(r.seconds);
      if (who === 'berth') bRss = Math.max(bRss, r.rssMiB);
      else cRss = Math.max(cRss, r.rssMiB);
      console.log(
        `  ${storage} ${image} run ${i + 1} ${who.padEnd(10)} ${r.seconds.toFixed(2)} s  peak RSS ${r.rssMiB.toFixed(0)} MiB  (load ${loadavg()[0]!.toFixed(1)})`,
      );
    }
  }
  return {
    storage,
    image,
    berth_s: +median(b).toFixed(2),
    containerd_s: +median(c).toFixed(2),
    ratio: +(median(b) / median(c)).toFixed(2),
    berth_peak_rss_MiB: Math.round(bRss),
    containerd_peak_rss_MiB: Math.round(cRss),
  };
}

async function main(): Promise<void> {
  const lab = await startLab({ images: IMAGES, log: (m) => console.log(m) });
  const rows = [];
  console.log(
    `${FETCH_ONLY ? 'fetch only (berth pull --no-unpack vs ctr content fetch)' : 'pull + unpack (berth pull vs ctr images pull)'}, ${RUNS} alternating runs each, berth: ${berthCommand().join(' ')}`,
  );
  try {
    for (const storage of STORAGE === 'both' ? ['tmpfs', 'disk'] : [STORAGE]) {
      const work = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
      if (storage === 'tmpfs') sh('mount', ['-t', 'tmpfs', '-o', 'size=6g,mode=0700', 'tmpfs', work]);
      try {
        writeFileSync(join(work, 'none.toml'), '');
        for (const image of IMAGES) rows.push(await compare(work, storage, image, lab.ref(image)));
      } finally {
        await unmountUnder(`${work}/`);
        if (storage === 'tmpfs') sh('umount', [work]);
        rmSync(work, { recursive: true, force: true });
      }
    }
  } finally {
    await lab.stop();
  }
  console.log(
    `medians of ${RUNS}; disk = ${tmpdir()} (${sh('findmnt', ['-no', 'FSTYPE,OPTIONS', '--target', tmpdir()]).stdout.trim()}); load average now ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.table(rows);
}

await main();
