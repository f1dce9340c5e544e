/**
 * The base layer of the lab's `debian:multi` (gzip, ~95 MB → ~200 MB, ~5k files) applied on a
 * tmpfs this bench mounts: berth's `applyLayer`, its native path (`applyLayerNative`, the C helper
 * of src/diff/native/, built before the runs), GNU tar (`tar -xzf`) and gunzip alone
 * (`gzip -dc > /dev/null`), in alternating runs. Each run is a process of its own, timed with GNU
 * time (wall, and user+sys CPU including its children), so the three are measured alike.
 * Prints each run, the medians, the ratios to GNU tar (goal: berth ≤ 1.2×) and the load average.
 * The tmpfs is mounted and unmounted here; nothing else is touched.
 *
 *   node_modules/.bin/node bench/apply-layer.ts [--runs 7] [--worker] [--layer N]
 *
 * `--worker` applies on a worker thread (pullUnpacker's `workers` option) instead of the main
 * thread, where `berth pull` applies by default. `--layer N` picks another layer (0 = base).
 * Run with `--child BLOB DIR [--worker | --native HELPER]` it is the berth side of one run; it loads dist/ when that
 * build is up to date (as bin/berth does; `npm run bench` builds it first), else the sources.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
}

const GZIP_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** What bin/berth passes to node, and where it keeps compiled modules. */
const NODE_FLAGS = '--disable-warning=ExperimentalWarning --max-semi-space-size=1';
const COMPILE_CACHE = process.env.NODE_COMPILE_CACHE ?? new URL('../node_modules/.cache/berth-compile', import.meta.url).pathname;

/**
 * The modules to load, as bin/berth decides: the build in dist/ when it is newer than every
 * source file (`npm run bench` builds it first), else the TypeScript sources (whose type
 * stripping costs the child about 0.3 s of CPU more).
 */
function modulesDir(): { dir: URL; ext: string } {
  const top = new URL('../', import.meta.url);
  const stamp = new URL('dist/.build-stamp', top).pathname;
  const stale =
    !existsSync(stamp) || execFileSync('find', [new URL('src', top).pathname, '-newer', stamp, '-print', '-quit'], { encoding: 'utf8' }).trim() !== '';
  return stale ? { dir: new URL('src/', top), ext: '.ts' } : { dir: new URL('dist/', top), ext: '.js' };
}

async function child(): Promise<void> {
  const i = process.argv.indexOf('--child');
  const [blob, dir] = [process.argv[i + 1]!, process.argv[i + 2]!];
  mkdirSync(dir);
  const opts = { root: dir, mediaType: GZIP_LAYER, whiteouts: 'overlay' as const };
  const { dir: modules, ext } = modulesDir();
  let apply: () => Promise<unknown>;
  if (process.argv.includes('--native')) {
    // As berth pull applies a stored blob: the helper reads the file itself.
    const { applyLayerNativeFrom } = await import(new URL(`diff/native-apply${ext}`, modules).href);
    const helper = arg('--native', '');
    apply = () => applyLayerNativeFrom({ kind: 'file', path: blob }, { ...opts, helper });
  } else if (process.argv.includes('--worker')) {
    const { applyLayerInWorker } = await import(new URL(`diff/apply-worker${ext}`, modules).href);
    apply = () => applyLayerInWorker({ kind: 'file', path: blob }, opts);
  } else {
    const { applyLayer } = await import(new URL(`diff/apply${ext}`, modules).href);
    apply = () => applyLayer(createReadStream(blob, { highWaterMark: 1 << 20 }), opts);
  }
  const t0 = performance.now();
  await apply();
  process.stdout.write(`${JSON.stringify({ applyMs: performance.now() - t0, modules: ext === '.js' ? 'dist' : 'src' })}\n`);
}

interface Timing {
  wallS: number;
  cpuS: number;
  /** The largest peak resident set of the command's processes (GNU time's %M). */
  rssMiB: number;
  stdout: string;
}

/** Run a shell command under GNU time: wall seconds, user+sys of it and all its children, and the largest peak RSS among them. */
async function timed(command: string, timesFile: string): Promise<Timing> {
  const { stdout } = await run('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timesFile, 'sh', '-c', command], { maxBuffer: 1 << 20 });
  const [real, user, sys, rssKiB] = readFileSync(timesFile, 'utf8').trim().split(/\s+/).map(Number) as [number, number, number, number];
  return { wallS: real, cpuS: user + sys, rssMiB: rssKiB / 1024, stdout };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function main(): Promise<void> {
  const runs = Number(arg('--runs', '7'));
  const layerIndex = Number(arg('--layer', '0'));
  const worker = process.argv.includes('--worker');
  // Imported here, not at the top: the child (the berth side) loads only what applyLayer needs.
  const { debianMultiImage } = await import('../test/lab/debian-image.ts');
  const { labCacheDir } = await import('../test/lab/lab.ts');
  const { ensureApplyHelper } = await import('../src/diff/native-apply.ts');
  const helper = await ensureApplyHelper(new URL('../node_modules/.cache/berth-apply-helper', import.meta.url).pathname);
  const image = await debianMultiImage(labCacheDir(), 'gzip', { log: (m) => console.log(m) });
  const desc = image.layers![layerIndex]!;
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-apply-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=2g,mode=0700', 'tmpfs', work]);
  try {
    const blob = join(work, 'layer.tar.gz');
    writeFileSync(blob, image.blobs.get(desc.digest)!);
    const out = join(work, 'out');
    const self = new URL(import.meta.url).pathname;
    const cmds = {
      // Node's flags and compile cache as bin/berth gives them, so the child starts as berth does.
      berth: `NODE_COMPILE_CACHE=${q(COMPILE_CACHE)} ${q(process.execPath)} ${NODE_FLAGS} ${q(self)} --child ${q(blob)} ${q(out)}${worker ? ' --worker' : ''}`,
      native: `NODE_COMPILE_CACHE=${q(COMPILE_CACHE)} ${q(process.execPath)} ${NODE_FLAGS} ${q(self)} --child ${q(blob)} ${q(out)} --native ${q(helper)}`,
      'GNU tar': `mkdir ${q(out)} && tar -xzf ${q(blob)} -C ${q(out)}`,
      gunzip: `gzip -dc ${q(blob)} > /dev/null`,
    };
    const names = Object.keys(cmds) as Array<keyof typeof cmds>;
    const results = Object.fromEntries(names.map((n) => [n, { wall: [] as number[], cpu: [] as number[], rss: [] as number[] }]));
    const applyMs: Record<string, number[]> = { berth: [], native: [] };
    const loads = [loadavg()[0]!];
    console.log(
      `layer ${layerIndex} (${desc.digest}, ${(desc.size / 1e6).toFixed(0)} MB gzip) on tmpfs; berth on the ${worker ? 'worker thread' : 'main thread'}; ${runs} runs`,
    );
    for (let i = 0; i < runs; i++) {
      // Rotate the order each run, so drift in the machine's load hits every tool alike.
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length]!;
        rmSync(out, { recursive: true, force: true });
        const t = await timed(cmds[name], join(work, 'times'));
        results[name]!.wall.push(t.wallS);
        results[name]!.cpu.push(t.cpuS);
        results[name]!.rss.push(t.rssMiB);
        let extra = '';
        if (name === 'berth' || name === 'native') {
          const report = JSON.parse(t.stdout.trim().split('\n').at(-1)!) as { applyMs: number; modules: string };
          applyMs[name]!.push(report.applyMs);
          extra = `  (applyLayer itself ${(report.applyMs / 1000).toFixed(2)} s, modules from ${report.modules}/)`;
        }
        console.log(`run ${i + 1} ${name.padEnd(8)} wall ${t.wallS.toFixed(2)} s  cpu ${t.cpuS.toFixed(2)} s  peak RSS ${t.rssMiB.toFixed(0)} MiB${extra}`);
      }
      loads.push(loadavg()[0]!);
    }
    rmSync(out, { recursive: true, force: true });
    const tar = results['GNU tar']!;
    console.table(
      names.map((n) => ({
        tool: n,
        'wall median s': +median(results[n]!.wall).toFixed(2),
        'cpu median s': +median(results[n]!.cpu).toFixed(2),
        'wall / GNU tar': +(median(results[n]!.wall) / median(tar.wall)).toFixed(2),
        'cpu / GNU tar': +(median(results[n]!.cpu) / median(tar.cpu)).toFixed(2),
        'peak RSS MiB': +median(results[n]!.rss).toFixed(0),
      })),
    );
    for (const [name, ms] of Object.entries(applyMs)) {
      console.log(`${name} applyLayer alone (no process start, no module loading): median ${(median(ms) / 1000).toFixed(2)} s`);
    }
    console.log(`load average (1 min) during the runs: ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}; storage: tmpfs`);
  } finally {
    await run('umount', [work]).catch(() => run('umount', ['-l', work]));
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv.includes('--child')) await child();
else await main();
