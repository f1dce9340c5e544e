/**
 * kill -9 during unpack: the child dies mid-layer; recover() at the next start leaves no active
 * or half-made snapshot, the committed ones are complete, and unpacking again finishes the image.
 * With the native apply path, the helper following the killed process's download dies with it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackImage } from '../../src/images/unpack.ts';
import { mountAll, unmount } from '../../src/snapshots/mount.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import { compressLayer, makeLayerTar, type LayerEntry } from '../helpers/layers.ts';

const NODE = `${process.cwd()}/node_modules/.bin/node`;
const CHILD = `${process.cwd()}/test/unpack/fixtures/unpack-child.ts`;
let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/unpack needs root');
  tmp = mkdtempSync(`${tmpdir()}/berth-crash-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function writeImage(dir: string) {
  mkdirSync(dir, { recursive: true });
  const specs: LayerEntry[][] = [
    [
      { type: 'dir', name: 'etc' },
      { type: 'file', name: 'etc/base', content: 'base' },
    ],
    [
      { type: 'dir', name: 'etc' },
      { type: 'whiteout', name: 'etc/base' },
      { type: 'file', name: 'etc/second', content: '2' },
    ],
    // Many files and incompressible data: the throttled stream takes seconds.
    Array.from({ length: 400 }, (_, i): LayerEntry => ({ type: 'file', name: `data/f${i}`, content: randomBytes(8192) })),
  ];
  const layers = [];
  const diffIds = [];
  for (const [i, s] of specs.entries()) {
    const l = compressLayer(await makeLayerTar(s), i === 2 ? 'zstd' : 'gzip');
    writeFileSync(`${dir}/${l.digest.slice(7)}`, l.blob);
    layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
    diffIds.push(l.diffId);
  }
  const json = `${dir}/image.json`;
  writeFileSync(json, JSON.stringify({ dir, layers, diffIds }));
  return { json, layers, diffIds };
}

/** Processes whose command line names `dir` (the helper's `--root` is a snapshot under it). */
function processesNaming(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(dir)) found.push(`${pid}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

for (const [snName, apply] of [
  ['overlayfs', 'js'],
  ['native', 'js'],
  ['overlayfs', 'native'],
  ['native', 'native'],
] as const) {
  describe(`kill -9 during unpack (${snName} snapshotter, ${apply} apply)`, () => {
    it('leaves no half-made committed snapshot, and unpacking again completes the image', async () => {
      const root = `${tmp}/${snName}-${apply}`;
      const img = await writeImage(`${tmp}/img-${snName}-${apply}`);
      const child = spawn(NODE, [CHILD, root, snName, img.json, 'throttle', apply], { stdio: ['ignore', 'pipe', 'inherit'] });
      const lines = createInterface({ input: child.stdout! });
      const seen: string[] = [];
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
      for await (const line of lines) {
        seen.push(line);
        if (line === 'applying 2') {
          await new Promise((r) => setTimeout(r, 300)); // well inside the last layer
          child.kill('SIGKILL');
          break;
        }
      }
      expect(await exited).toBe('SIGKILL');
      expect(seen).toContain('committed 1');
      expect(seen).not.toContain('done');
      // The kernel kills a helper whose parent died (PR_SET_PDEATHSIG); give it a moment to go.
      for (let i = 0; i < 50 && processesNaming(root).length; i++) await new Promise((r) => setTimeout(r, 20));
      expect(processesNaming(root)).toEqual([]);

      const sn = await openSnapshotter(root, snName); // runs recover()
      try {
        const all = [];
        for await (const s of sn.walk()) all.push(s);
        expect(all.every((s) => s.kind === 'committed')).toBe(true);
        expect(all.map((s) => s.key).sort()).toEqual([...(await import('../../src/oci/chain-id.ts')).chainIds(img.diffIds).slice(0, 2)].sort());
        // No leftover directories: one per committed snapshot.
        expect(readdirSync(`${sn.root}/snapshots`).sort()).toEqual(all.map((s) => s.id).sort());

        const chain = await unpackImage({
          layers: img.layers,
          diffIds: img.diffIds,
          snapshotter: sn,
          signal: AbortSignal.timeout(30_000),
          open: async (d) => Readable.from([readFileSync(`${tmp}/img-${snName}-${apply}/${d.digest.slice(7)}`)]),
        });
        const target = `${tmp}/mnt-${snName}-${apply}`;
        mkdirSync(target);
        await mountAll(await sn.view('check', chain.at(-1)), target);
        try {
          expect(readdirSync(`${target}/etc`)).toEqual(['second']);
          expect(readdirSync(`${target}/data`).length).toBe(400);
        } finally {
          await unmount(target);
        }
        await sn.remove('check');
      } finally {
        await sn.close();
      }
    });
  });
}
