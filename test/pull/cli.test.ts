/**
 * The CLI as users run it (`./bin/berth`, real processes): pull, images, content ls/verify, import,
 * kill -9 mid-pull then resume, two concurrent pulls, registry down, bad input.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry, startFaultProxy, freePort, type RunningRegistry, type FaultProxy } from '../helpers/registry.ts';
import { buildImage, pushImage, writeDockerArchive, writeOciArchive, writeOciLayout, type BuiltImage } from '../helpers/images.ts';

const BERTH = join(process.cwd(), 'bin/berth');
const BIG = 6 << 20;

let reg: RunningRegistry;
let proxy: FaultProxy;
let img: BuiltImage;
let tmp: string;
let root: string;
let cfg: string;

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg.url });
  img = await buildImage({
    layers: [{ files: { 'etc/hello': 'hello\n' } }, { files: { 'opt/big.bin': randomBytes(BIG) }, compression: 'none' }],
  });
  await pushImage(reg.url, 'app', 'v1', img);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
});
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-cli-pull-'));
  root = join(tmp, 'root');
  cfg = join(tmp, 'config.toml');
  await writeFile(cfg, `[pull]\nmax_retries = 1\n[registry]\nconfig_path = "${tmp}/certs.d"\ndocker_config = "${tmp}/docker.json"\n`);
  proxy.faults.length = 0;
  proxy.requests.length = 0;
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function start(args: string[]) {
  const child = spawn(BERTH, ['--root', root, '--config', cfg, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b) => (stdout += String(b)));
  child.stderr!.on('data', (b) => (stderr += String(b)));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}
const berth = (...args: string[]) => start(args).done;

async function ingestBytes(): Promise<number> {
  const dir = join(root, 'io.containerd.content.v1.content/ingest');
  let max = 0;
  for (const d of await readdir(dir).catch(() => [])) {
    const s = await stat(join(dir, d, 'data')).catch(() => undefined);
    if (s && s.size > max) max = s.size;
  }
  return max;
}

describe('berth pull (CLI)', () => {
  it('unpacks into snapshots by default; --no-unpack only fetches', async () => {
    const fetched = await berth('pull', '--no-unpack', `${reg.host}/app:v1`);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse((await berth('images', '--json')).stdout)[0].unpacked).toBe(false);
    expect(JSON.parse((await berth('snapshots', 'ls', '--json')).stdout).snapshots).toEqual([]);

    const pulled = await berth('pull', `${reg.host}/app:v1`);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(JSON.parse((await berth('images', '--json')).stdout)[0].unpacked).toBe(true);
    const snaps = JSON.parse((await berth('snapshots', 'ls', '--json')).stdout).snapshots as Array<{ kind: string }>;
    expect(snaps.map((x) => x.kind)).toEqual(['committed', 'committed']); // one per layer
  });

  it('pulls, lists (table and JSON), and verifies; verify exits 1 on a corrupted blob', async () => {
    const r = await berth('pull', '--no-unpack', `${reg.host}/app:v1`);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${reg.host}/app:v1 ${img.root.digest}\n`);
    const table = await berth('images');
    expect(table.stdout).toMatch(
      new RegExp(`^NAME +DIGEST +PLATFORM +SIZE\\n${reg.host}/app:v1 +${img.root.digest.slice(7, 19)} +linux/amd64 +\\d\\.\\d MiB\\n$`),
    );
    const json = JSON.parse((await berth('images', '--json')).stdout);
    expect(json).toEqual([expect.objectContaining({ name: `${reg.host}/app:v1`, digest: img.root.digest, platform: 'linux/amd64', unpacked: false })]);
    const ls = JSON.parse((await berth('content', 'ls', '--json')).stdout);
    expect(ls.blobs.map((b: any) => b.digest).sort()).toEqual([img.root.digest, img.config!.digest, ...img.layers!.map((l) => l.digest)].sort());
    const ok = await berth('content', 'verify');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('4 blobs checked, 0 corrupt');
    const victim = join(root, 'io.containerd.content.v1.content/blobs/sha256', img.layers![0]!.digest.slice(7));
    await chmod(victim, 0o644);
    await writeFile(victim, 'not the layer');
    const bad = await berth('content', 'verify');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`CORRUPT ${img.layers![0]!.digest}`);
  });

  it('kill -9 mid-blob, then a second pull resumes by Range, completes and verifies', async () => {
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'slow', bytesPerSec: 1_500_000 } });
    const first = start(['pull', '--no-unpack', `${proxy.host}/app:v1`]);
    const t0 = Date.now();
    while ((await ingestBytes()) < 1_000_000) {
      if (Date.now() - t0 > 20_000)
        throw new Error(
          `no partial ingest appeared; berth said: ${await Promise.race([first.done.then((r) => r.stderr), new Promise((r) => setTimeout(() => r('(still running)'), 10))])}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.code).toBe(null);
    const partial = await ingestBytes();
    expect(partial).toBeGreaterThan(0);
    proxy.faults.length = 0;
    const second = await berth('pull', '--no-unpack', `${proxy.host}/app:v1`);
    expect(second.stderr).not.toMatch(/berth: /);
    expect(second.code).toBe(0);
    const big = img.layers![1]!.digest;
    const resumed = proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(big) && q.range);
    expect(resumed).toHaveLength(1);
    const offset = Number(/^bytes=(\d+)-$/.exec(resumed[0]!.range!)?.[1]);
    expect(offset).toBeGreaterThan(0);
    expect(resumed[0]!.status).toBe(206);
    const verify = await berth('content', 'verify');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('0 corrupt');
    expect(await readdir(join(root, 'io.containerd.content.v1.content/ingest'))).toEqual([]);
  });

  it('two concurrent berth pull processes of one image both succeed, each blob fetched once', async () => {
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'slow', bytesPerSec: 8_000_000 } });
    const [a, b] = await Promise.all([berth('pull', '--no-unpack', `${proxy.host}/app:v1`), berth('pull', '--no-unpack', `${proxy.host}/app:v1`)]);
    expect([a.code, a.stderr.includes('berth:') ? a.stderr : '']).toEqual([0, '']);
    expect([b.code, b.stderr.includes('berth:') ? b.stderr : '']).toEqual([0, '']);
    for (const l of img.layers!) expect(proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(`blobs/${l.digest}`))).toHaveLength(1);
    expect((await berth('content', 'verify')).code).toBe(0);
    expect(JSON.parse((await berth('images', '--json')).stdout)).toHaveLength(1);
  });

  it('never logs credentials or tokens, even at trace level', async () => {
    const secure = await startFaultProxy({ target: reg.url, auth: { kind: 'token', username: 'edge', password: 'hunter2-secret' } });
    try {
      await writeFile(
        cfg,
        `[registry]\nconfig_path = "${tmp}/certs.d"\ndocker_config = "${tmp}/docker.json"\n[registry.hosts."${secure.host}"]\nusername = "edge"\npassword = "hunter2-secret"\n`,
      );
      const r = await berth('--log-level', 'trace', 'pull', '--no-unpack', `${secure.host}/app:v1`);
      expect(r.code).toBe(0);
      expect(secure.tokenRequests.length).toBeGreaterThan(0);
      const out = r.stdout + r.stderr;
      expect(out).toContain('registry request'); // trace/debug lines were written
      expect(out).not.toContain('hunter2-secret');
      expect(out).not.toContain(Buffer.from('edge:hunter2-secret').toString('base64'));
      expect(out).not.toMatch(/Bearer [0-9a-f]{8}/);
    } finally {
      await secure.stop();
    }
  });

  it('a registry that is down: clear error, exit code 1', async () => {
    const port = await freePort();
    const r = await berth('pull', `127.0.0.1:${port}/app:v1`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `berth: resolve 127\\.0\\.0\\.1:${port}/app:v1: cannot reach http://127\\.0\\.0\\.1:${port} after 2 attempts: ECONNREFUSED \\(is the registry running\\?\\)`,
      ),
    );
  });

  it('bad references and bad config are rejected with exit code 1 and say what is wrong', async () => {
    const r = await berth('pull', 'library/UPPER:tag');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid image reference "library/UPPER:tag": repository name must be lowercase');
    expect(proxy.requests).toEqual([]);
    await writeFile(cfg, '[pull]\nconcurency = 3\n');
    const c = await berth('pull', `${reg.host}/app:v1`);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('unknown key "pull.concurency"');
    await writeFile(cfg, '[pull]\nconcurrency = "three"\n');
    const t = await berth('images');
    expect(t.code).toBe(1);
    expect(t.stderr).toContain('pull.concurrency');
  });

  it('imports an OCI layout dir, an OCI archive and a docker-archive', async () => {
    await writeOciLayout(join(tmp, 'layout'), img, 'v1');
    await writeOciArchive(join(tmp, 'app.oci.tar'), img, 'example.com/app:v2');
    await writeDockerArchive(join(tmp, 'app.docker.tar'), img, 'app:v3');
    for (const p of ['layout', 'app.oci.tar', 'app.docker.tar']) {
      const r = await berth('import', join(tmp, p));
      expect([p, r.code, r.stderr]).toEqual([p, 0, '']);
    }
    const names = JSON.parse((await berth('images', '--json')).stdout)
      .map((i: any) => i.name)
      .sort();
    expect(names).toEqual(['docker.io/library/app:v3', 'example.com/app:v2', 'import.local/layout:v1']);
    expect((await berth('content', 'verify')).code).toBe(0);
    // A tampered blob in a layout is refused and not committed.
    const victim = join(tmp, 'layout/blobs/sha256', img.layers![0]!.digest.slice(7));
    const bytes = await readFile(victim);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(victim, bytes);
    await rm(root, { recursive: true, force: true });
    const bad = await berth('import', join(tmp, 'layout'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/digest mismatch: expected sha256:[a-f0-9]{64}, found sha256:[a-f0-9]{64}/);
  });
});
