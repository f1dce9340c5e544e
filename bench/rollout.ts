/**
 * Bench (issue 9): what an update costs the app, through the CLI with real runc, as a user runs it.
 * - Bad update: from `berth apply` of a change whose container exits at once, to the old app
 *   answering HTTP again (it was stopped for the update and is restored by the rollback).
 *   Goal: confirmAfter (or the health retries) plus under 2 s; here the exit is seen at once.
 * - Good update, download-then-kill: the longest gap in HTTP answers while `berth apply` replaces
 *   the container (polled every 10 ms), and the apply's time to confirmed.
 * - Good update of a worker that holds no port (it writes a heartbeat file every 20 ms into a
 *   volume): the longest gap between heartbeats, under download-then-kill and under start-first
 *   (goal 0: the new one beats before the old one stops). Heartbeats are read every 5 ms.
 *
 *   node_modules/.bin/node bench/rollout.ts [RUNS]
 *
 * Needs root and runc. Uses the offline demo image (scripts/build-demo-image.ts: busybox httpd),
 * a temp berth root and a free loopback port; stops everything at the end.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const RUNS = Number(process.argv[2] ?? 3);
const REPO = path.resolve(import.meta.dirname, '..');
const BERTH = path.join(REPO, 'bin/berth');
const NODE = path.join(REPO, 'node_modules/.bin/node');
const DEMO_REF = 'localhost/berth-demo/busybox:latest';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(200) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function webDoc(port: number, version: string, command?: string[]): string {
  const cmd = command ?? ['/bin/sh', '-c', `mkdir -p /www && echo ${version} > /www/index.html && exec /bin/httpd -f -p 127.0.0.1:${port} -h /www`];
  return `apiVersion: berth.dev/v1alpha1
kind: Container
metadata: {name: web}
spec:
  image: ${DEMO_REF}
  command: ${JSON.stringify(cmd)}
  env: {VERSION: "${version}"}
  network: host
  stopGracePeriod: 1s
  update: {confirmAfter: 2s}
`;
}

/** The worker: rewrites /data/beat every 20 ms; start-first's successor is ready once it has beaten. */
function beatDoc(version: string, strategy: string): string {
  return `apiVersion: berth.dev/v1alpha1
kind: Volume
metadata: {name: beat}
---
apiVersion: berth.dev/v1alpha1
kind: Container
metadata: {name: worker}
spec:
  image: ${DEMO_REF}
  command: [/bin/sh, -c, "trap 'exit 0' TERM; while true; do echo ${version} > /data/beat; echo > /tmp/beating; sleep 0.02; done"]
  network: none
  mounts: [{type: volume, name: beat, target: /data}]
  stopGracePeriod: 1s
  healthcheck: {exec: [/bin/sh, -c, "test -f /tmp/beating"], interval: 200ms, retries: 3}
  update: {strategy: ${strategy}, confirmAfter: 2s}
`;
}

/** The longest time the heartbeat file's mtime stood still while `during` ran. */
async function longestBeatGap(file: string, during: () => Promise<unknown>): Promise<number> {
  let polling = true;
  let gap = 0;
  const poller = (async () => {
    let last = (await stat(file)).mtimeMs;
    let lastChange = performance.now();
    while (polling) {
      const m = (await stat(file).catch(() => undefined))?.mtimeMs;
      const now = performance.now();
      if (m !== undefined && m !== last) {
        gap = Math.max(gap, now - lastChange);
        [last, lastChange] = [m, now];
      }
      await sleep(5);
    }
  })();
  await during();
  await sleep(500); // beats after the apply returns count too
  polling = false;
  await poller;
  return gap;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-rollout-'));
  const root = path.join(dir, 'root');
  const manifests = path.join(dir, 'manifests');
  const config = path.join(dir, 'config.toml');
  await mkdir(path.join(root, 'import'), { recursive: true });
  await mkdir(manifests);
  await writeFile(config, `[registry]\nconfig_path = "${dir}/certs.d"\ndocker_config = "${dir}/docker.json"\n`);
  await run(NODE, ['scripts/build-demo-image.ts', path.join(root, 'import', 'demo.tar')], { cwd: REPO });
  const berth = (...args: string[]) => run(BERTH, ['--root', root, '--config', config, ...args]).catch((err) => err as { code: number; stdout: string });
  const port = await freePort();
  const apply = async (doc: string) => {
    await writeFile(path.join(manifests, 'web.yaml'), doc);
    return berth('apply', '-f', manifests);
  };
  try {
    let version = 0;
    await apply(webDoc(port, `v${++version}`));
    while (!(await answers(port))) await sleep(20);

    const badMs: number[] = [];
    const goodGapMs: number[] = [];
    const goodApplyMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Bad: the replacement exits at once; time until the old app answers again.
      const t0 = performance.now();
      const applying = apply(webDoc(port, `bad${i}`, ['/bin/sh', '-c', 'exit 1']));
      let down = false;
      for (;;) {
        const ok = await answers(port);
        if (!ok) down = true;
        if (ok && down) break;
        if (ok && !down && performance.now() - t0 > 60_000) break;
        await sleep(10);
      }
      badMs.push(performance.now() - t0);
      await applying;

      // Good: the longest gap in answers while the container is replaced.
      let lastOk = performance.now();
      let gap = 0;
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const ok = await answers(port);
          const now = performance.now();
          if (ok) {
            gap = Math.max(gap, now - lastOk);
            lastOk = now;
          }
          await sleep(10);
        }
      })();
      const g0 = performance.now();
      const r = await apply(webDoc(port, `v${++version}`));
      goodApplyMs.push(performance.now() - g0);
      polling = false;
      await poller;
      goodGapMs.push(gap);
      if ((r as { code?: number }).code) console.log(`good update ${i}: apply exited ${(r as { code: number }).code}`);
    }
    console.log(`rollout bench on ${os.hostname()}, root ${root} (${RUNS} runs, medians; confirmAfter 2s)`);
    console.log(`bad update → old app answering again: ${(median(badMs) / 1000).toFixed(2)} s (runs: ${badMs.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
    console.log(
      `good update, download-then-kill: longest gap in answers ${(median(goodGapMs) / 1000).toFixed(2)} s; berth apply until confirmed ${(median(goodApplyMs) / 1000).toFixed(2)} s`,
    );

    // The worker: download-then-kill, then start-first, on the same machine in the same run.
    await writeFile(path.join(manifests, 'web.yaml'), '');
    const beat = path.join(root, 'volumes/beat/beat');
    const gaps: Record<string, number[]> = { 'download-then-kill': [], 'start-first': [] };
    for (const strategy of ['download-then-kill', 'start-first']) {
      await writeFile(path.join(manifests, 'worker.yaml'), beatDoc(`${strategy}-0`, strategy));
      await berth('apply', '-f', manifests);
      // The noise floor: the longest gap with no update at all (a loaded machine delays the beats).
      gaps[`${strategy}, no update (baseline)`] = [await longestBeatGap(beat, () => sleep(3000))];
      for (let i = 1; i <= RUNS; i++) {
        gaps[strategy]!.push(
          await longestBeatGap(beat, async () => {
            await writeFile(path.join(manifests, 'worker.yaml'), beatDoc(`${strategy}-${i}`, strategy));
            const r = await berth('apply', '-f', manifests);
            if ((r as { code?: number }).code) console.log(`worker update ${strategy} ${i}: apply exited ${(r as { code: number }).code}`);
          }),
        );
      }
    }
    for (const [strategy, xs] of Object.entries(gaps)) {
      console.log(
        `good update of a worker, ${strategy}: longest gap between heartbeats ${(median(xs) / 1000).toFixed(2)} s (runs: ${xs.map((x) => (x / 1000).toFixed(2)).join(', ')}; a beat every 20 ms)`,
      );
    }
  } finally {
    await writeFile(path.join(manifests, 'web.yaml'), '');
    await rm(path.join(manifests, 'worker.yaml'), { force: true });
    await berth('apply', '-f', manifests, '--allow-empty', '--force');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
