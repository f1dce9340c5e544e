/**
 * What each runtime dependency costs a process that has loaded it and sits idle: a fresh node per
 * package (bin/berth's flags for `berth run`), the package imported, the daemon's idle collection
 * (src/reconcile/idle-collection.ts) and a full GC, then VmRSS (file-backed pages of
 * the node binary and anonymous memory apart) and V8's used heap, against a node that imports
 * nothing. Also the entry points berth's own processes load. Each row is a process of its own, so
 * costs overlap (the ESM loader's first use is in every row): read them as upper bounds.
 *
 *   node_modules/.bin/node bench/idle-deps.ts
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const TOP = join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(TOP, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
/** bin/berth's flags for `berth run` (keep them in step), with whose gc() the daemon collects when idle. */
const FLAGS = [
  '--disable-warning=ExperimentalWarning',
  '--max-semi-space-size=1',
  '--no-opt',
  '--no-maglev',
  '--liftoff-only',
  '--no-sparkplug',
  '--expose-gc',
  '--v8-pool-size=1',
];

// Run in the child: import, settle, collect, measure.
const PROBE = `
  const spec = process.argv[1];
  if (spec !== '(nothing)') await import(spec);
  await new Promise((r) => setTimeout(r, 200));
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }); gc();
  const s = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp(k + ':\\\\s+(\\\\d+)').exec(s)[1]);
  const v8 = await import('node:v8');
  console.log(JSON.stringify({ rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile'), heap: v8.getHeapStatistics().used_heap_size >> 10 }));`;

function measure(spec: string): { rss: number; anon: number; file: number; heap: number } {
  const r = spawnSync(process.execPath, [...FLAGS, '--input-type=module', '-e', PROBE, spec], { cwd: TOP, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${spec}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

const built = (rel: string) => new URL(`../dist/${rel}`, import.meta.url).href;
const specs = ['(nothing)', ...Object.keys(pkg.dependencies).sort()];
const ours = ['cli/main.js', 'cli/run.js', 'reconcile/daemon.js', 'cli/daemon-deps.js', 'images/pull.js'];
const base = measure('(nothing)');
const rows: Record<string, string | number>[] = [];
for (const spec of [...specs, ...ours.map(built)]) {
  let m;
  try {
    m = measure(spec);
  } catch (err) {
    rows.push({ module: spec, error: String((err as Error).message).split('\n')[0]! });
    continue;
  }
  const mib = (kib: number) => +(kib / 1024).toFixed(1);
  rows.push({
    module: spec.replace(`file://${TOP}/`, ''),
    'RSS MiB': mib(m.rss),
    '+RSS': mib(m.rss - base.rss),
    '+anon': mib(m.anon - base.anon),
    '+file (node binary)': mib(m.file - base.file),
    '+heap': mib(m.heap - base.heap),
  });
}
console.log(`idle cost of each dependency (node ${process.version}, ${FLAGS.join(' ')}); the dist rows need a build (scripts/build.sh)`);
console.table(rows);
