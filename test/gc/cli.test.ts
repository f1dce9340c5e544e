import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { openContentStore } from '../../src/content/local-store.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { commitBlob } from '../helpers/blobs.ts';

const BERTH = resolve(import.meta.dirname, '../../bin/berth');
let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-gc-cli-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function berth(...args: string[]) {
  const r = spawnSync(BERTH, ['--root', root, '--config', join(root, 'none.toml'), '--log-level', 'error', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function orphanBlob(text: string): Promise<string> {
  return (await commitBlob(await openContentStore(root), text)).digest;
}

test('berth gc --dry-run lists an unreferenced blob and keeps it; berth gc removes it', async () => {
  const digest = await orphanBlob('unreferenced '.repeat(100));
  const md = Metadata.open(join(root, 'metadata.db'));
  md.addGeneration({ desired: {}, result: 'applied' });
  md.close();
  const dry = berth('gc', '--dry-run');
  expect(dry.code, dry.err).toBe(0);
  expect(dry.out).toMatch(new RegExp(`blob\\s+${digest}\\s+1\\.3 KiB\\s+would remove`));
  expect(dry.out).toContain('1 unreferenced, 1.3 KiB would be freed (dry run)');
  expect(existsSync(join(root, 'io.containerd.content.v1.content/blobs/sha256', digest.slice(7)))).toBe(true);

  const real = berth('gc');
  expect(real.code, real.err).toBe(0);
  expect(real.out).toContain('1 of 1 unreferenced removed, 1.3 KiB freed');
  expect(existsSync(join(root, 'io.containerd.content.v1.content/blobs/sha256', digest.slice(7)))).toBe(false);
  expect(berth('gc').out).toContain('nothing to collect');
});

test('berth gc --json prints the report; named volumes survive without --volumes', async () => {
  await orphanBlob('x');
  mkdirSync(join(root, 'volumes', 'data'), { recursive: true });
  writeFileSync(join(root, 'volumes', 'data', 'f'), 'precious');
  const md = Metadata.open(join(root, 'metadata.db'));
  md.addGeneration({ desired: { containers: [], images: [], volumes: [] }, result: 'applied' });
  md.close();

  const r = berth('gc', '--json');
  expect(r.code, r.err).toBe(0);
  const report = JSON.parse(r.out);
  expect(report.items).toHaveLength(1);
  expect(report.items[0]).toMatchObject({ kind: 'blob', removed: true, size: 1 });
  expect(report.kept.volume).toBe(1);
  expect(existsSync(join(root, 'volumes', 'data', 'f'))).toBe(true);

  const v = berth('gc', '--volumes', '--json');
  expect(JSON.parse(v.out).items).toMatchObject([{ kind: 'volume', key: 'data', removed: true }]);
  expect(existsSync(join(root, 'volumes', 'data'))).toBe(false);
});

test('with a metadata that remembers nothing, berth gc removes nothing and says why; --force sweeps', async () => {
  const digest = await orphanBlob('z');
  const blob = join(root, 'io.containerd.content.v1.content/blobs/sha256', digest.slice(7));
  const r = berth('gc');
  expect(r.code).toBe(0);
  expect(r.out).toContain('would remove');
  expect(r.out).toContain('warning: the metadata');
  expect(existsSync(blob)).toBe(true);
  expect(berth('gc', '--force').out).toContain('1 of 1 unreferenced removed');
  expect(existsSync(blob)).toBe(false);
});

test('berth gc waits for the reconcile lock and then fails naming its holder; --dry-run does not need it', async () => {
  await orphanBlob('y');
  const md = Metadata.open(join(root, 'metadata.db'));
  const held = md.tryAcquireLock('reconcile', { holder: 'berth run', ttlMs: 60_000 });
  expect(held.acquired).toBe(true);
  const r = berth('gc', '--wait', '300ms');
  expect(r.code).toBe(1);
  expect(r.err).toContain(`reconcile lock is held by berth run (pid ${process.pid})`);
  expect(berth('gc', '--dry-run').code).toBe(0);
  if (held.acquired) md.releaseLock(held.lock);
  md.close();
  expect(berth('gc').code).toBe(0);
});

test('kill -9 of berth gc mid-sweep: the next run finishes the job; what is referenced is intact and verifies', async () => {
  const store = await openContentStore(root);
  const put = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const w = await store.writer({ ref: digest, expected: digest });
    await w.write(bytes);
    await w.commit(bytes.length, digest);
    return { digest, size: bytes.length };
  };
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...(await put(Buffer.alloc(4096, 1))) };
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(Buffer.from('{"os":"linux"}'))) };
  const mt = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = await put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt, config, layers: [layer] })));
  const md = Metadata.open(join(root, 'metadata.db'));
  md.putImage({
    name: 'keep',
    target: { ...manifest, mediaType: mt },
    manifestDigest: manifest.digest,
    configDigest: config.digest,
    platform: 'linux/amd64',
    size: 1,
    labels: {},
  });
  md.addGeneration({ desired: {}, result: 'applied' });
  md.close();
  // Orphans written straight into blobs/ (valid blobs, named by their digest): quicker than 1500 ingests.
  for (let i = 0; i < 1500; i++) {
    const b = Buffer.from(`orphan ${i}`);
    writeFileSync(join(root, 'io.containerd.content.v1.content/blobs/sha256', createHash('sha256').update(b).digest('hex')), b, { mode: 0o444 });
  }

  const { spawn } = await import('node:child_process');
  const child = spawn(BERTH, ['--root', root, '--config', join(root, 'none.toml'), 'gc'], { stdio: 'ignore' });
  // Kill it once the sweep has visibly started (some orphans gone), before it can finish.
  const blobsDir = join(root, 'io.containerd.content.v1.content/blobs/sha256');
  const { readdirSync } = await import('node:fs');
  for (let i = 0; i < 2000 && readdirSync(blobsDir).length > 1400; i++) await new Promise((r) => setTimeout(r, 2));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const mid = readdirSync(blobsDir).length;
  expect(mid, 'killed mid-sweep: some orphans gone, not all').toBeGreaterThan(3);
  expect(mid).toBeLessThanOrEqual(1400);

  const again = berth('gc', '--json');
  expect(again.code, again.err).toBe(0);
  expect(JSON.parse(again.out).items.every((i: { removed: boolean }) => i.removed)).toBe(true);
  expect(readdirSync(blobsDir).sort()).toEqual([layer.digest, config.digest, manifest.digest].map((d) => d.slice(7)).sort());
  const verify = spawnSync(BERTH, ['--root', root, '--config', join(root, 'none.toml'), 'content', 'verify'], { encoding: 'utf8' });
  expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  const md2 = Metadata.open(join(root, 'metadata.db'));
  expect(md2.checkIntegrity()).toEqual([]);
  expect(md2.getImage('keep')).toBeDefined();
  md2.close();
});
