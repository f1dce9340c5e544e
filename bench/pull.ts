/**
 * Pull + unpack through the CLI, as a user runs it: `bin/berth pull IMAGE` (a process of its own,
 * its start-up included) against a fresh containerd's `ctr images pull`, from the same loopback
 * registry (test/lab). Each comparison alternates the two tools in one run (which goes first
 * alternates too), each into a new empty root with `sync` before it, on a tmpfs this bench mounts
 * (CPU-bound: the software) and on the disk under $TMPDIR (the disk, which swings run to run:
 * compare only within one run). Prints every run, the medians, the ratio berth/containerd and the
 * peak RSS: berth's process and its children summed (sampled every 10 ms; see treeRssKiB),
 * containerd's daemon
 * (VmHWM; the ctr client aside).
 *
 * On the disk, no root is deleted until every run there is done. On an ext4 without a journal
 * (this machine kind's disk), creating files within a few minutes of deleting thousands of others
 * costs several times the CPU: the inode allocator skips each recently deleted inode after looking
 * up its inode table block (`recently_deleted` in fs/ext4/ialloc.c: 60 s, 6 min while the block is
 * dirty; `perf record` of GNU tar and of the layer helper: a quarter of their time). Deleting the
 * last root before each run made every run slower than the one before, for both tools, and
 * measured that rather than the pull. On the tmpfs, each run's root is deleted before the next:
 * kept, ten of them (4-5 GB) pushed the next runs into memory this virtual machine had never
 * touched, whose first use the host pays for (writing 11 GB to a tmpfs took 20 s of system time),
 * and both tools' runs took twice as long from then on.
 *
 *   node_modules/.bin/node bench/pull.ts [--runs 3] [--storage tmpfs|disk|both] [--fetch-only]
 *       [--node-flags "…"] [image…]      (images: debian:multi debian:multi-zstd, the default)
 *
 * `--fetch-only`: `berth pull --no-unpack` against `ctr content fetch`. `--node-flags` runs berth's
 * entry point with these node flags instead of bin/berth's (to measure a flag's cost; see
 * docs/benchmarks.md).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ensureApplyHelper } from '../src/diff/native-apply.ts';
import { startContainerd } from '../test/lab/containerd.ts';
import { LAB_IMAGES, startLab, type LabImage } from '../test/lab/lab.ts';
import { unmountUnder } from '../test/lab/mounts.ts';
import { berthCommand } from './berth-command.ts';

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

function sh(cmd: string, argv: string[]) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

/**
 * The summed VmRSS (KiB) of `pid` and all its descendants now (0 once it is gone), leaving out a
 * child that runs its parent's program: one between fork and exec (each helper starts so), whose
 * pages are its parent's, shared copy-on-write. Counted, such a child added up to 20 MiB of node's
 * "anonymous" memory to a sample (a child named MainThread with 19.7 MiB anonymous and 0.1 MiB
 * file-backed: the tree 104 MiB against 92-96 in the other runs). Shared library pages are still
 * counted once per process that maps them, as RSS does.
 */
function treeRssKiB(pid: number, parentExe?: string): number {
  let kib = 0;
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    if (exe === parentExe) return 0;
    kib += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (kids) for (const kid of kids.split(' ')) kib += treeRssKiB(Number(kid), exe);
    }
  } catch {
    /* exited meanwhile */
  }
  return kib;
}

/**
 * One timed command: wall seconds, and its peak RSS summed over the process and its children
 * (berth's native apply helpers are processes of their own; GNU time would report only the
 * largest one), sampled every 10 ms.
 */
async function timed(cmd: string[]): Promise<{ seconds: number; rssMiB: number }> {
  sh('sync', []);
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRssKiB(child.pid!))), 10);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c) => resolve(c));
  });
  clearInterval(sampler);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`${cmd.join(' ')} failed (${code}):\n${output}`);
  return { seconds, rssMiB: peak / 1024 };
}

/**
 * The layer-apply helper, built once for the whole bench (untimed, as containerd's start is): a
 * device builds it at its first pull and keeps it in `<root>/lib`, so each empty root gets a copy.
 */
const applyHelpers = new Map<string, string>();
/**
 * The directory for a run: on the disk a new one each time, on the tmpfs the last one emptied
 * (see the header for why).
 */
let dirsMade = 0;
async function runDir(work: string, storage: string, what: string): Promise<string> {
  if (storage === 'disk') return join(work, `${what}-${++dirsMade}`);
  const dir = join(work, what);
  await unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

async function berthRun(work: string, storage: string, image: string) {
  const root = await runDir(work, storage, 'berth-root');
  if (!applyHelpers.has(work)) applyHelpers.set(work, await ensureApplyHelper(join(work, 'helper-cache')));
  const helper = applyHelpers.get(work)!;
  mkdirSync(join(root, 'lib'), { recursive: true });
  // With its record of the static libraries it linked in (src/c-helper.ts), or berth builds it again.
  for (const f of [helper, `${helper}.deps`]) copyFileSync(f, join(root, 'lib', basename(f)));
  const global = ['--root', root, '--config', join(work, 'none.toml')];
  const r = await timed([...berthCommand(TOP, NODE_FLAGS), ...global, 'pull', ...(FETCH_ONLY ? ['--no-unpack'] : []), image]);
  const images = JSON.parse(sh(join(TOP, 'bin/berth'), [...global, 'images', '--json']).stdout);
  if (!FETCH_ONLY && !images[0]?.unpacked) throw new Error(`berth pull ${image}: not unpacked`);
  return r;
}

/** A fresh containerd (not timed), then ctr; the RSS is the daemon's peak. */
async function containerdRun(work: string, storage: string, image: string) {
  const ctrd = await startContainerd(await runDir(work, storage, 'ctrd'));
  try {
    const r = await timed(['ctr', '--address', ctrd.address, ...(FETCH_ONLY ? ['content', 'fetch'] : ['images', 'pull']), '--plain-http', image]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ctrd.pid}/status`, 'utf8'));
    return { seconds: r.seconds, rssMiB: Number(hwm?.[1] ?? NaN) / 1024 };
  } finally {
    await ctrd.stop({ keep: true });
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
      const r = who === 'berth' ? await berthRun(work, storage, ref) : await containerdRun(work, storage, ref);
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
    `${FETCH_ONLY ? 'fetch only (berth pull --no-unpack vs ctr content fetch)' : 'pull + unpack (berth pull vs ctr images pull)'}, ${RUNS} alternating runs each, berth: ${berthCommand(TOP, NODE_FLAGS).join(' ')}`,
  );
  try {
    for (const storage of STORAGE === 'both' ? ['tmpfs', 'disk'] : [STORAGE]) {
      const work = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
      if (storage === 'tmpfs') sh('mount', ['-t', 'tmpfs', '-o', 'size=16g,mode=0700', 'tmpfs', work]);
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
