/**
 * Pull benchmark: berth against containerd 1.6 on the lab's `debian:multi` (4 layers, 165 MB
 * gzip) from the same loopback registry (test/lab/lab.ts: a docker-registry on a free loopback
 * port). Runs alternate (berth, containerd, berth, …), each from an empty root with `sync`
 * before it; a containerd of its own is started fresh before each of its runs (not timed). Prints medians,
 * the ratio berth/containerd and berth's peak RSS (from /usr/bin/time -v).
 *
 *   node_modules/.bin/node bench/pull.ts [--runs N] [--ref debian:multi] [--only fetch|unpack] [--compile-cache]
 *
 * 1. fetch only:     berth pull --no-unpack      vs  ctr content fetch --plain-http
 * 2. pull + unpack:  berth pull                  vs  ctr images pull --plain-http
 *    (until unpacking is wired into `berth pull`, case 2 measures berth fetching only; it says so)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContainerd } from '../test/lab/containerd.ts';
import { LAB_IMAGES, startLab, type LabImage } from '../test/lab/lab.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const RUNS = Number(flag('--runs', '5'));
const REF = flag('--ref', 'debian:multi') as LabImage;
if (!LAB_IMAGES.includes(REF)) throw new Error(`--ref ${REF}: not a lab image (lab images: ${LAB_IMAGES.join(', ')})`);
/** `fetch`, `unpack` or `all` (default). */
const ONLY = flag('--only', 'all');
/** Run berth with NODE_COMPILE_CACHE (warmed first): what bin/berth gains by enabling it. */
const COMPILE_CACHE = args.includes('--compile-cache');
const WORK = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
const CTRD = join(WORK, 'ctrd');
const BERTH = join(import.meta.dirname, '../bin/berth');

const BERTH_ENV: NodeJS.ProcessEnv = COMPILE_CACHE ? { NODE_COMPILE_CACHE: join(WORK, 'compile-cache') } : {};

function sh(cmd: string, argv: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...BERTH_ENV, ...opts.env }, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

/** Run under /usr/bin/time -v: wall seconds and peak RSS in MiB. */
function timed(cmd: string, argv: string[]): { seconds: number; rssMiB: number; out: string } {
  sh('sync', []);
  const t0 = process.hrtime.bigint();
  const r = sh('/usr/bin/time', ['-v', cmd, ...argv]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { seconds, rssMiB: rss ? Number(rss[1]) / 1024 : NaN, out: r.stdout };
}

function berthRun(image: string, unpack: boolean) {
  const root = join(WORK, 'berth-root');
  rmSync(root, { recursive: true, force: true });
  const argv = ['--root', root, '--config', join(WORK, 'none.toml'), 'pull', ...(unpack ? [] : ['--no-unpack']), image];
  const r = timed(BERTH, argv);
  const images = JSON.parse(sh(BERTH, ['--root', root, '--config', join(WORK, 'none.toml'), 'images', '--json']).stdout);
  return { ...r, unpacked: Boolean(images[0]?.unpacked) };
}

/** One containerd run from an empty root: a fresh containerd (not timed), then ctr. */
async function ctrRun(image: string, kind: 'fetch' | 'pull') {
  const ctrd = await startContainerd(CTRD);
  try {
    const argv = kind === 'fetch' ? ['--address', ctrd.address, 'content', 'fetch', '--plain-http', image] : ['--address', ctrd.address, 'images', 'pull', '--plain-http', image];
    return timed('ctr', argv);
  } finally {
    await ctrd.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const lab = await startLab({ images: [REF], log: (m) => console.log(m) });
  const image = lab.ref(REF);
  console.log(`pull benchmark: ${REF}, ${RUNS} alternating runs each, roots on ${WORK} (disk), sync before each run`);
  try {
    // berth's fixed cost: starting Node and loading the CLI (an `images` on an empty root).
    const startup: number[] = [];
    for (let i = 0; i < 3; i++) startup.push(timed(BERTH, ['--root', join(WORK, 'empty-root'), '--config', join(WORK, 'none.toml'), 'images']).seconds);
    console.log(`berth start-up (images on an empty root): median ${median(startup).toFixed(2)} s${COMPILE_CACHE ? ' (NODE_COMPILE_CACHE on)' : ''}`);
    const cases = [
      ['fetch only (berth pull --no-unpack vs ctr content fetch)', false, 'fetch'],
      ['pull + unpack (berth pull vs ctr images pull)', true, 'pull'],
    ] as const;
    for (const [label, unpack, ctrKind] of cases.filter((c) => ONLY === 'all' || (ONLY === 'fetch') === !c[1])) {
      const b: number[] = [];
      const c: number[] = [];
      const rss: number[] = [];
      let unpacked = true;
      for (let i = 0; i < RUNS; i++) {
        const br = berthRun(image, unpack);
        b.push(br.seconds);
        rss.push(br.rssMiB);
        unpacked &&= br.unpacked;
        c.push((await ctrRun(image, ctrKind)).seconds);
        process.stdout.write(`  run ${i + 1}: berth ${br.seconds.toFixed(2)} s (${br.rssMiB.toFixed(0)} MiB), containerd ${c.at(-1)!.toFixed(2)} s\n`);
      }
      const mb = median(b);
      const mc = median(c);
      console.log(`${label}${unpack && !unpacked ? '  [berth did not unpack: unpacking is not wired into pull yet]' : ''}`);
      console.log(`  berth      median ${mb.toFixed(2)} s  (runs: ${b.map((x) => x.toFixed(2)).join(', ')})`);
      console.log(`  containerd median ${mc.toFixed(2)} s  (runs: ${c.map((x) => x.toFixed(2)).join(', ')})`);
      console.log(`  ratio berth/containerd ${(mb / mc).toFixed(2)}  ${mb <= mc ? '(berth no slower)' : '(berth slower)'}`);
      console.log(`  berth peak RSS: max ${Math.max(...rss).toFixed(0)} MiB, median ${median(rss).toFixed(0)} MiB  ${Math.max(...rss) < 150 ? '(< 150 MiB)' : '(over 150 MiB)'}`);
    }
  } finally {
    await lab.stop();
    rmSync(WORK, { recursive: true, force: true });
  }
}

await main();
