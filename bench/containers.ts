/**
 * Bench: bring N containers (default 20) sharing one busybox rootfs to running, berth's runtime API
 * against containerd (`ctr run -d`), and the memory each one's supervision costs (berth-shim vs
 * containerd-shim-runc-v2). Each berth container gets its own overlay writable layer on the shared
 * rootfs, as containerd's snapshotter gives each of its containers.
 *
 *   node_modules/.bin/node bench/containers.ts [N] [RUNS]
 *
 * Needs root, runc and containerd (scripts/setup.sh installs them). It starts the lab
 * (test/lab: a loopback registry with busybox:latest, and a containerd of its own) and also times
 * the whole product path: `berth apply` of N Container documents on the (already pulled) lab
 * busybox image, through the CLI (plan, writable snapshots, bundles, shims, records), from none
 * running to all running.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Runtime } from '../src/runtime/runtime.ts';
import { startContainerd, type RunningContainerd } from '../test/lab/containerd.ts';
import { startLab } from '../test/lab/lab.ts';
import { cleanup, makeBusyboxRootfs, request } from '../test/runtime/helpers.ts';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 20);
const RUNS = Number(process.argv[3] ?? 3);
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
async function benchBerthApply(work: string, image: string): Promise<{ ms: number; rssKiB: number[]; pssKiB: number[] }> {
  const root = await mkdtemp(path.join(work, 'apply-'));
  const manifests = path.join(root, 'manifests');
  const empty = path.join(root, 'empty');
  await mkdir(manifests, { recursive: true });
  await mkdir(empty, { recursive: true });
  const berth = (...args: string[]) => run(BERTH, ['--root', root, '--log-level', 'warn', ...args], { maxBuffer: 16 << 20 });
  await berth('pull', image);
  const docs = Array.from(
    { length: N },
    (_, i) =>
      `apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: bench-${i}}\nspec:\n  image: "${image}"\n  command: [/bin/sh, -c, "while true; do sleep 3600; done"]\n  network: none\n`,
  );
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

async function cleanCtr(ctrd: RunningContainerd) {
  const ctr = (...args: string[]) => ctrd.ctr(args, { namespace: NS });
  const stdout = await ctr('containers', 'ls', '-q').catch(() => '');
  for (const id of stdout.trim().split('\n').filter(Boolean)) {
    await ctr('task', 'kill', '-s', 'SIGKILL', id).catch(() => {});
    for (let i = 0; i < 50; i++) {
      const ok = await ctr('task', 'rm', '-f', id).then(
        () => true,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await ctr('containers', 'rm', id).catch(() => {});
  }
}

async function benchContainerd(ctrd: RunningContainerd, image: string): Promise<{ ms: number; rssKiB: number[]; pssKiB: number[] }> {
  await cleanCtr(ctrd);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await ctrd.ctr(['run', '-d', image, `bench-${i}`, '/bin/sh', '-c', 'while true; do sleep 3600; done'], { namespace: NS });
  const ms = performance.now() - t0;
  const shims = await pgrep(`containerd-shim-runc-v2 -namespace ${NS}`);
  const out = { ms, rssKiB: shims.map((p) => kib(p, 'VmRSS')), pssKiB: shims.map((p) => kib(p, 'Pss')) };
  await cleanCtr(ctrd);
  return out;
}

function report(label: string, runs: { ms: number; rssKiB: number[]; pssKiB: number[] }[]) {
  const ms = runs.map((r) => r.ms);
  const last = runs[runs.length - 1]!;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const perRss = sum(last.rssKiB) / N / 1024,
    perPss = sum(last.pssKiB) / N / 1024;
  console.log(
    `${label.padEnd(34)} ${N} to running: median ${median(ms).toFixed(0)} ms (runs: ${ms.map((x) => x.toFixed(0)).join(', ')}); ` +
      `supervisors: ${last.rssKiB.length}, RSS/container ${perRss.toFixed(2)} MiB, PSS/container ${perPss.toFixed(2)} MiB`,
  );
}

if (process.getuid?.() !== 0) throw new Error('bench/containers.ts needs root');
const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-containers-'));
const lab = await startLab({ images: ['busybox:latest'] });
const containerd = await startContainerd(path.join(work, 'ctrd'));
try {
  const image = lab.ref('busybox:latest');
  const rootfs = await makeBusyboxRootfs(path.join(work, 'image'));
  await containerd.ctr(['images', 'pull', '--plain-http', image], { namespace: NS });
  // Runs alternate between the contenders, so a busy machine slows them alike.
  const seq = [],
    par = [],
    ctrd = [],
    apply = [];
  for (let i = 0; i < RUNS; i++) {
    seq.push(await benchBerth(work, rootfs, false));
    par.push(await benchBerth(work, rootfs, true));
    apply.push(await benchBerthApply(work, image));
    ctrd.push(await benchContainerd(containerd, image));
  }
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ${os.cpus().length} CPUs`,
  );
  report('berth (runtime API, sequential)', seq);
  report('berth (runtime API, all at once)', par);
  report('berth apply (CLI, N documents)', apply);
  report('containerd 1.6 (ctr run -d, sequential)', ctrd);
  console.log(`ratio berth apply / containerd: ${(median(apply.map((r) => r.ms)) / median(ctrd.map((r) => r.ms))).toFixed(2)}`);
} finally {
  await cleanCtr(containerd);
  await containerd.stop();
  await lab.stop();
  await rm(work, { recursive: true, force: true });
}
