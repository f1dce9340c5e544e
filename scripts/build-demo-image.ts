/**
 * Builds the demo image from Debian's busybox-static as an OCI archive, the way an air-gapped
 * device is provisioned: a tarball in berth's import directory, imported (every digest verified)
 * when berth starts. Deterministic: the same busybox binary gives the same digests.
 *
 * Usage: node scripts/build-demo-image.ts OUT.tar [NAME]
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

const [out, name = 'localhost/berth-demo/busybox:latest'] = process.argv.slice(2);
if (!out) throw new Error('usage: build-demo-image.ts OUT.tar [NAME]');

const APPLETS = [
  'sh',
  'echo',
  'ls',
  'cat',
  'sleep',
  'httpd',
  'wget',
  'env',
  'id',
  'date',
  'true',
  'false',
  'hostname',
  'ps',
  'tail',
  'tee',
  'mkdir',
  'rm',
  'touch',
  'nc',
  'vi',
  'head',
  'grep',
  'sed',
  'awk',
  'top',
  'uptime',
];
const MTIME = new Date('2026-01-01T00:00:00Z');

async function pack(entries: Array<{ header: tar.Headers; body?: Buffer }>): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => p.entry(e.header, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const dir = (name: string, mode = 0o755) => ({ header: { name, type: 'directory' as const, mode, mtime: MTIME, uid: 0, gid: 0 } });
const file = (name: string, body: Buffer, mode = 0o644) => ({
  header: { name, type: 'file' as const, mode, mtime: MTIME, uid: 0, gid: 0, size: body.length },
  body,
});
const symlink = (name: string, linkname: string) => ({ header: { name, type: 'symlink' as const, linkname, mode: 0o777, mtime: MTIME, uid: 0, gid: 0 } });

const busybox = await readFile('/bin/busybox');
const layerTar = await pack([
  dir('bin'),
  file('bin/busybox', busybox, 0o755),
  ...APPLETS.map((a) => symlink(`bin/${a}`, 'busybox')),
  dir('etc'),
  file(
    'etc/passwd',
    Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nedge:x:1000:1000:edge:/home/edge:/bin/sh\n'),
  ),
  file('etc/group', Buffer.from('root:x:0:\nnogroup:x:65534:\nedge:x:1000:\n')),
  dir('home'),
  dir('home/edge'),
  dir('root', 0o700),
  dir('tmp', 0o1777),
  dir('data'),
  dir('www'),
  file('www/index.html', Buffer.from('<h1>hello from the edge</h1>\n')),
]);
const layerGz = gzipSync(layerTar, { level: 9 });

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const config = Buffer.from(
  JSON.stringify({
    created: MTIME.toISOString(),
    architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh', '-c', 'echo hello from busybox'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [sha(layerTar)] },
    history: [{ created: MTIME.toISOString(), created_by: 'berth scripts/build-demo-image.ts' }],
  }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layerGz), size: layerGz.length }],
  }),
);
const index = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
        platform: { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch },
        annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop() },
      },
    ],
  }),
);

const blob = (b: Buffer) => file(`blobs/sha256/${sha(b).slice(7)}`, b);
const archive = await pack([
  file('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')),
  file('index.json', index),
  dir('blobs'),
  dir('blobs/sha256'),
  blob(config),
  blob(manifest),
  blob(layerGz),
]);
await writeFile(`${out}.tmp`, archive);
await rename(`${out}.tmp`, out);
console.log(`${out}: ${name} ${sha(manifest)}`);
