/**
 * Bench: bring N containers (default 20) sharing one busybox rootfs to running, berth's runtime API
 * against containerd (`ctr run -d`), and the memory each one's supervision costs (berth-shim vs
 * containerd-shim-runc-v2). Each berth container gets its own overlay writable layer on the shared
 * rootfs, as containerd's snapshotter gives each of its containers.
 *
 *   node_modules/.bin/node bench/containers.ts [N] [RUNS]
 *
 * Needs root, runc, and for the comparison the lab (/work/shared/lab/up.sh: registry with
 * busybox:latest on 127.0.0.1:5000, containerd). With the lab up it also times the whole product
 * path: `berth apply` of N Container documents on the (already pulled) lab busybox image, through
 * the CLI (plan, writable snapshots, bundles, shims, records), from none running to all running.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Runtime } from '../src/runtime/runtime.ts';
import { cleanup, makeBusyboxRootfs, request } from '../test/runtime/helpers.ts';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 20);
const RUNS = Number(process.argv[3] ?? 3);
const LAB = process.env.LAB_SCRIPTS ?? '/work/shared/lab';
const CTRD_DIR = '/tmp/lab/ctrd-runtime-bench';
const SOCK = `${CTRD_DIR}/containerd.sock`;
const IMAGE = '127.0.0.1:5000/busybox:latest';
const NS = 'berth-bench';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kib = (pid: number, field: 'VmRSS' | 'Pss') => {
  const file = field === 'Pss' ? `/proc/${pid}/smaps_rollup` : `/proc/${pid}/status`;
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : 0;
};
const pgrep = async (pattern: string) => {
  try {
    return (await run('pgrep', ['-f', '--', pattern])).stdout.trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

async function benchBerth(work: string, rootfs: string, parallel: boolean): Promise<{ ms: number; rssKiB: number[]; pssKiB: number[] }> {
  const root = await mkdtemp(path.join(work, 'berth-'));
  const rt = await Runtime.open({ root });
  try {
    const t0 = performance.now();
    const one = async (i: number) => {
      const name = `bench-${i}`;
      const layer = path.join(root, 'layers', name);
      await mkdir(path.join(layer, 'fs'), { recursive: true });
      await mkdir(path.join(layer, 'work'), { recursive: true });
      const mounts = [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${rootfs}`, `upperdir=${layer}/fs`, `workdir=${layer}/work`] }];
      await rt.create(request(name, mounts, { args: ['/bin/sh', '-c', 'while true; do sleep 3600; done'] }));
      await rt.start(name);
    };
    if (parallel) await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
    else for (let i = 0; i < N; i++) await one(i);
    const ms = performance.now() - t0;
    const list = await rt.list();
    if (list.filter((s) => s.state === 'running').length !== N) throw new Error('not every berth container is running');
    const shims = list.map((s) => s.record.task!.shimPid!);
    return { ms, rssKiB: shims.map((p) => kib(p, 'VmRSS')), pssKiB: shims.map((p) => kib(p, 'Pss')) };
  } finally {
    await cleanup(rt, root);
  }
}

const BERTH = path.resolve(import.meta.dirname, '../bin/berth');

/** `berth apply` of N containers on the lab busybox image (pulled before the clock starts). */
async function benchBerthApply(work: string): Promise<{ ms: number; rssKiB: number[]; pssKiB: number[] }> {
  const root = await mkdtemp(path.join(work, 'apply-'));
  const manifests = path.join(root, 'manifests');
  const empty = path.join(root, 'empty');
  await mkdir(manifests, { recursive: true });
  await mkdir(empty, { recursive: true });
  const berth = (...args: string[]) => run(BERTH, ['--root', root, '--log-level', 'warn', ...args], { maxBuffer: 16 << 20 });
  await berth('pull', IMAGE);
  const docs = Array.from({ length: N }, (_, i) =>
    `apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: bench-${i}}\nspec:\n  image: "${IMAGE}"\n  command: [/bin/sh, -c, "while true; do sleep 3600; done"]\n  network: none\n`);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path.join(manifests, 'bench.yaml'), docs.join('---\n'));
  try {
    const t0 = performance.now();
    await berth('apply', '-f', manifests);
    const ms = performance.now() - t0;
    const ps = JSON.parse((await berth('ps', '--json')).stdout) as Array<{ state: string }>;
    if (ps.filter((c) => c.state === 'running').length !== N) throw new Error('berth apply: not every container is running');
    const shims = await pgrep(`berth-shim.*${root}`);
    return { ms, rssKiB: shims.map((p) => kib(p, 'VmRSS')), pssKiB: shims.map((p) => kib(p, 'Pss')) };
  } finally {
    await berth('apply', '-f', empty, '--allow-empty').catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

async function ctr(...args: string[]) {
  return run('ctr', ['--address', SOCK, '--namespace', NS, ...args], { maxBuffer: 64 << 20 });
}

async function cleanCtr() {
  const { stdout } = await ctr('containers', 'ls', '-q').catch(() => ({ stdout: '' }));
  for (const id of stdout.trim().split('\n').filter(Boolean)) {
    await ctr('task', 'kill', '-s', 'SIGKILL', id).catch(() => {});
    for (let i = 0; i < 50; i++) {
      const ok = await ctr('task', 'rm', '-f', id).then(() => true, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await ctr('containers', 'rm', id).catch(() => {});
  }
}

async function benchContainerd(): Promise<{ ms: number; rssKiB: number[]; pssKiB: number[] }> {
  await cleanCtr();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await ctr('run', '-d', IMAGE, `bench-${i}`, '/bin/sh', '-c', 'while true; do sleep 3600; done');
  const ms = performance.now() - t0;
  const shims = await pgrep(`containerd-shim-runc-v2 -namespace ${NS}`);
  const out = { ms, rssKiB: shims.map((p) => kib(p, 'VmRSS')), pssKiB: shims.map((p) => kib(p, 'Pss')) };
  await cleanCtr();
  return out;
}

function report(label: string, runs: { ms: number; rssKiB: number[]; pssKiB: number[] }[]) {
  const ms = runs.map((r) => r.ms);
  const last = runs[runs.length - 1]!;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const perRss = sum(last.rssKiB) / N / 1024, perPss = sum(last.pssKiB) / N / 1024;
  console.log(
    `${label.padEnd(34)} ${N} to running: median ${median(ms).toFixed(0)} ms (runs: ${ms.map((x) => x.toFixed(0)).join(', ')}); ` +
      `supervisors: ${last.rssKiB.length}, RSS/container ${perRss.toFixed(2)} MiB, PSS/container ${perPss.toFixed(2)} MiB`,
  );
}

if (process.getuid?.() !== 0) throw new Error('bench/containers.ts needs root');
const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-containers-'));
try {
  const rootfs = await makeBusyboxRootfs(path.join(work, 'image'));
  const haveLab = existsSync('/tmp/lab') && (await fetch('http://127.0.0.1:5000/v2/').then((r) => r.ok, () => false));
  if (haveLab) {
    await run(path.join(LAB, 'containerd-up.sh'), [CTRD_DIR]);
    await ctr('images', 'pull', '--plain-http', IMAGE);
  }
  // Runs alternate between the contenders, so a busy machine slows them alike.
  const seq = [], par = [], ctrd = [], apply = [];
  for (let i = 0; i < RUNS; i++) {
    seq.push(await benchBerth(work, rootfs, false));
    par.push(await benchBerth(work, rootfs, true));
    if (haveLab) apply.push(await benchBerthApply(work));
    if (haveLab) ctrd.push(await benchContainerd());
  }
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${os.cpus().length} CPUs`);
  report('berth (runtime API, sequential)', seq);
  report('berth (runtime API, all at once)', par);
  if (haveLab) report('berth apply (CLI, N documents)', apply);
  if (haveLab) report('containerd 1.6 (ctr run -d, sequential)', ctrd);
  if (haveLab) console.log(`ratio berth apply / containerd: ${(median(apply.map((r) => r.ms)) / median(ctrd.map((r) => r.ms))).toFixed(2)}`);
  else console.log('containerd: skipped, the lab is not up (bash /work/shared/lab/up.sh)');
} finally {
  await rm(work, { recursive: true, force: true });
}
