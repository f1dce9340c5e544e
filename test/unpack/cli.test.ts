/** `berth snapshots ls` and `berth mount` / `berth unmount`, run as a user would (bin/berth). */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackImage } from '../../src/images/unpack.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { isMountPoint, unmount } from '../../src/snapshots/mount.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import { compressLayer, makeLayerTar } from '../helpers/layers.ts';

const run = promisify(execFile);
const BERTH = `${process.cwd()}/bin/berth`;
let tmp: string;
let root: string;
const NAME = '127.0.0.1:5000/cli/demo:v1';

const berth = (...args: string[]) => run(BERTH, ['--root', root, '--config', `${tmp}/none.toml`, '--log-level', 'error', ...args]);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('test/unpack needs root to mount');
  tmp = mkdtempSync(`${tmpdir()}/berth-cli-unpack-`);
  root = `${tmp}/root`;
  // An image record as a pull leaves it: unpacked layers and their chain IDs.
  const l1 = compressLayer(
    await makeLayerTar([
      { type: 'dir', name: 'etc' },
      { type: 'file', name: 'etc/motd', content: 'hello\n' },
      { type: 'file', name: 'etc/old', content: 'x' },
    ]),
    'gzip',
  );
  const l2 = compressLayer(
    await makeLayerTar([
      { type: 'dir', name: 'etc' },
      { type: 'whiteout', name: 'etc/old' },
      { type: 'file', name: 'etc/new', content: 'n' },
    ]),
    'zstd',
  );
  const sn = await openSnapshotter(root, 'overlayfs');
  const chainIds = await unpackImage({
    layers: [l1, l2].map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    diffIds: [l1.diffId, l2.diffId],
    snapshotter: sn,
    signal: AbortSignal.timeout(20_000),
    open: async (d) => Readable.from([[l1, l2].find((l) => l.digest === d.digest)!.blob]),
  });
  await sn.close();
  const md = Metadata.open(`${root}/metadata.db`);
  md.putImage({
    name: NAME,
    target: { digest: l1.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 },
    manifestDigest: l1.digest,
    configDigest: l2.digest,
    platform: 'linux/amd64',
    size: l1.size + l2.size,
    snapshotter: 'overlayfs',
    chainIds,
    labels: {},
  });
  md.close();
  writeFileSync(`${tmp}/none.toml`, '');
}, 60_000);

afterAll(async () => {
  for (const t of ['mnt', 'mnt2']) if (existsSync(`${tmp}/${t}`)) await unmount(`${tmp}/${t}`).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

describe('berth snapshots / mount / unmount', () => {
  it('snapshots ls lists key, parent, kind and size (table and JSON)', async () => {
    const { stdout } = await berth('snapshots', 'ls');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^KEY\s+PARENT\s+KIND\s+SIZE$/);
    expect(lines.length).toBe(3);
    expect(lines.slice(1).every((l) => /committed/.test(l))).toBe(true);
    const json = JSON.parse((await berth('snapshots', 'ls', '--json')).stdout);
    expect(json.snapshotter).toBe('overlayfs');
    expect(json.snapshots).toHaveLength(2);
    const base = json.snapshots.find((s: { parent: string | null }) => s.parent === null);
    const top = json.snapshots.find((s: { parent: string | null }) => s.parent !== null);
    expect(top.parent).toBe(base.key);
    expect(base.size).toBeGreaterThan(0);
  });

  it('mount shows the image rootfs read-only; unmount removes the mount and its view', async () => {
    const target = `${tmp}/mnt`;
    await berth('mount', NAME, target);
    expect(await isMountPoint(target)).toBe(true);
    expect(readFileSync(`${target}/etc/motd`, 'utf8')).toBe('hello\n');
    expect(readdirSync(`${target}/etc`).sort()).toEqual(['motd', 'new']);
    expect(() => writeFileSync(`${target}/etc/x`, 'x')).toThrow(/EROFS|read-only/);
    const views = JSON.parse((await berth('snapshots', 'ls', '--json')).stdout).snapshots.filter((s: { kind: string }) => s.kind === 'view');
    expect(views.map((v: { key: string }) => v.key)).toEqual([`berth-mount:${target}`]);
    // A second mount on the same target is refused, not stacked.
    await expect(berth('mount', NAME, target)).rejects.toMatchObject({ stderr: expect.stringMatching(/already has a berth mount/) });
    await berth('unmount', target);
    expect(await isMountPoint(target)).toBe(false);
    const after = JSON.parse((await berth('snapshots', 'ls', '--json')).stdout).snapshots;
    expect(after.every((s: { kind: string }) => s.kind === 'committed')).toBe(true);
  });

  it('mount of an unknown image fails with a clear message', async () => {
    await expect(berth('mount', '127.0.0.1:5000/nope:v1', `${tmp}/mnt2`)).rejects.toMatchObject({
      stderr: expect.stringMatching(/image 127.0.0.1:5000\/nope:v1 not found/),
    });
    expect(existsSync(`${tmp}/mnt2`) && (await isMountPoint(`${tmp}/mnt2`))).toBe(false);
  });
});
