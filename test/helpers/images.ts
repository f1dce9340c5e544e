/**
 * Build OCI images in memory for tests, then write them as an OCI layout dir, an OCI archive, a
 * docker-archive, or push them to a registry over its HTTP API.
 *
 * @example
 *   const img = await buildImage({ layers: [{ files: { 'etc/hello': 'hi\n' } }], platform: 'linux/amd64' });
 *   const multi = buildIndex([img, await buildImage({ layers: [...], platform: 'linux/arm64' })]);
 *   await pushImage(registry.url, 'demo', 'v1', multi);          // to test/helpers/registry.ts
 *   await writeOciLayout('/tmp/x/layout', multi, 'v1');
 *   await writeDockerArchive('/tmp/x/img.tar', img, 'demo:v1');
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { request } from 'undici';

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

/** An image (one manifest) or an index over images, with every blob it references. */
export interface BuiltImage {
  /** The manifest (or index) descriptor: what a tag points at. */
  root: Desc;
  /** Manifest or index JSON bytes. */
  rootBytes: Buffer;
  /** Every blob by digest, including manifests, configs and layers (and rootBytes). */
  blobs: Map<string, Buffer>;
  /** For a single image: its config and layers (compressed blobs), base first. */
  config?: Desc;
  layers?: Desc[];
  /** Uncompressed tar of each layer (for docker-archive), base first. */
  layerTars?: Buffer[];
  diffIds?: string[];
  /** For an index: the images in it. */
  images?: BuiltImage[];
}

export type FileContent =
  | string
  | Buffer
  | { content?: string | Buffer; mode?: number; type?: 'file' | 'directory' | 'symlink'; linkname?: string; uid?: number; gid?: number };

export interface LayerSpec {
  /** Path (no leading slash) → content. Directories are implied. */
  files?: Record<string, FileContent>;
  /** A ready-made uncompressed tar instead of `files`. */
  tar?: Buffer;
  compression?: 'gzip' | 'zstd' | 'none';
}

export interface BuildOptions {
  layers: LayerSpec[];
  /** `os/arch[/variant]`, default `linux/amd64`. */
  platform?: string;
  /** `oci` (default) or `docker` (schema 2) media types. */
  mediaTypes?: 'oci' | 'docker';
  /** Image config `config` section: Env, Cmd, Entrypoint, WorkingDir, User, Labels… */
  config?: Record<string, unknown>;
}

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const MT = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: {
      none: 'application/vnd.oci.image.layer.v1.tar',
      gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
      zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
    },
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: {
      none: 'application/vnd.docker.image.rootfs.diff.tar',
      gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      zstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
    },
  },
};

/** An uncompressed tar of `files` (deterministic: fixed mtimes, sorted names). */
export async function makeTar(files: Record<string, FileContent>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const dirs = new Set<string>();
  for (const name of Object.keys(files)) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const mtime = new Date(0);
  for (const d of [...dirs].sort()) {
    if (files[d] !== undefined) continue;
    pack.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime });
  }
  for (const name of Object.keys(files).sort()) {
    const f = files[name]!;
    const spec = typeof f === 'string' || Buffer.isBuffer(f) ? { content: f } : f;
    const type = spec.type ?? 'file';
    const base = {
      name: type === 'directory' ? `${name}/` : name,
      mode: spec.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime,
      uid: spec.uid ?? 0,
      gid: spec.gid ?? 0,
    };
    if (type === 'file') {
      const content = Buffer.from(spec.content ?? '');
      await new Promise<void>((resolve, reject) => pack.entry({ ...base, type, size: content.length }, content, (err) => (err ? reject(err) : resolve())));
    } else if (type === 'symlink') {
      pack.entry({ ...base, type, linkname: spec.linkname! });
    } else {
      pack.entry({ ...base, type });
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function compress(tar: Buffer, c: 'gzip' | 'zstd' | 'none'): Buffer {
  if (c === 'gzip') return gzipSync(tar);
  if (c === 'zstd') return zstdCompressSync(tar);
  return tar;
}

/** Build one image: layers, config, manifest. */
export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  const kind = opts.mediaTypes ?? 'oci';
  const mt = MT[kind];
  const [os, architecture, variant] = (opts.platform ?? 'linux/amd64').split('/') as [string, string, string?];
  const blobs = new Map<string, Buffer>();
  const layers: Desc[] = [];
  const layerTars: Buffer[] = [];
  const diffIds: string[] = [];
  for (const spec of opts.layers) {
    const tar = spec.tar ?? (await makeTar(spec.files ?? {}));
    const c = spec.compression ?? 'gzip';
    const blob = compress(tar, c);
    const d = sha256(blob);
    blobs.set(d, blob);
    layers.push({ mediaType: mt.layer[c], digest: d, size: blob.length });
    layerTars.push(tar);
    diffIds.push(sha256(tar));
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture,
      os,
      ...(variant ? { variant } : {}),
      created: '2024-01-01T00:00:00Z',
      config: opts.config ?? { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'berth test helper' })),
    }),
  );
  const configDesc: Desc = { mediaType: mt.config, digest: sha256(config), size: config.length };
  blobs.set(configDesc.digest, config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt.manifest, config: configDesc, layers }));
  const root: Desc = {
    mediaType: mt.manifest,
    digest: sha256(manifest),
    size: manifest.length,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  };
  blobs.set(root.digest, manifest);
  return { root, rootBytes: manifest, blobs, config: configDesc, layers, layerTars, diffIds };
}

/**
 * An index over images (each must carry a platform). `attestation: true` adds an
 * `unknown/unknown` attestation entry as BuildKit does, which pullers must ignore.
 */
export function buildIndex(images: BuiltImage[], opts: { mediaTypes?: 'oci' | 'docker'; attestation?: boolean } = {}): BuiltImage {
  const mt = MT[opts.mediaTypes ?? 'oci'];
  const blobs = new Map<string, Buffer>();
  const manifests: Desc[] = [];
  for (const img of images) {
    for (const [d, b] of img.blobs) blobs.set(d, b);
    manifests.push({ ...img.root });
  }
  if (opts.attestation) {
    const att = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.oci.manifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('{}'), size: 2 },
        layers: [],
      }),
    );
    blobs.set(sha256(att), att);
    blobs.set(sha256('{}'), Buffer.from('{}'));
    manifests.push({
      mediaType: MT.oci.manifest,
      digest: sha256(att),
      size: att.length,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': images[0]!.root.digest },
    });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt.index, manifests }));
  const root: Desc = { mediaType: mt.index, digest: sha256(index), size: index.length };
  blobs.set(root.digest, index);
  return { root, rootBytes: index, blobs, images };
}

/** Write an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/*`), tagged `tag`. */
export async function writeOciLayout(dir: string, img: BuiltImage, tag = 'latest'): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [d, b] of img.blobs) await writeFile(join(dir, 'blobs', 'sha256', d.slice(7)), b);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const { platform: _p, ...rootDesc } = img.root;
  const index = { schemaVersion: 2, mediaType: MT.oci.index, manifests: [{ ...rootDesc, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

async function writeTar(path: string, entries: Array<{ name: string; data?: Buffer; type?: 'directory' }>): Promise<void> {
  const pack = tarStream.pack();
  const out = pipeline(pack, createWriteStream(path));
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory', mode: 0o755 });
    else pack.entry({ name: e.name, size: e.data!.length, mode: 0o644 }, e.data!);
  }
  pack.finalize();
  await out;
}

/** Write an OCI archive: an OCI layout, as a tar file. */
export async function writeOciArchive(path: string, img: BuiltImage, tag = 'latest'): Promise<void> {
  const { platform: _p, ...rootDesc } = img.root;
  const entries = [
    { name: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    {
      name: 'index.json',
      data: Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MT.oci.index, manifests: [{ ...rootDesc, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
      ),
    },
    { name: 'blobs/', type: 'directory' as const },
    { name: 'blobs/sha256/', type: 'directory' as const },
    ...[...img.blobs].map(([d, b]) => ({ name: `blobs/sha256/${d.slice(7)}`, data: b })),
  ];
  await writeTar(path, entries);
}

/**
 * Write a docker-archive (`docker save` format): `manifest.json` with Config, RepoTags and
 * Layers, the config as `<hex>.json` and each layer as an uncompressed `<hex>/layer.tar`.
 */
export async function writeDockerArchive(path: string, img: BuiltImage, repoTag: string): Promise<void> {
  if (!img.config || !img.layerTars) throw new Error('writeDockerArchive needs a single image, not an index');
  const configName = `${img.config.digest.slice(7)}.json`;
  const layerNames = img.layerTars.map((t) => `${sha256(t).slice(7)}/layer.tar`);
  const manifest = [{ Config: configName, RepoTags: [repoTag], Layers: layerNames }];
  const entries: Array<{ name: string; data?: Buffer; type?: 'directory' }> = [
    { name: configName, data: img.blobs.get(img.config.digest)! },
    ...img.layerTars.flatMap((t, i) => [
      { name: `${layerNames[i]!.split('/')[0]}/`, type: 'directory' as const },
      { name: layerNames[i]!, data: t },
    ]),
    { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) },
  ];
  await writeTar(path, entries);
}

/**
 * Push an image (or index) to a registry over the distribution HTTP API: every blob by
 * monolithic upload, then child manifests by digest, then the root by `tag`.
 * `registryUrl` is like `http://127.0.0.1:5000`.
 */
export async function pushImage(registryUrl: string, repo: string, tag: string, img: BuiltImage, headers: Record<string, string> = {}): Promise<void> {
  // Manifests (and nested indexes) go up as manifests, children before their index.
  const ordered: BuiltImage[] = [];
  const walk = (i: BuiltImage) => {
    for (const child of i.images ?? []) walk(child);
    ordered.push(i);
  };
  walk(img);
  const manifests = new Set<string>(ordered.map((i) => i.root.digest));
  for (const [d, b] of img.blobs) {
    if (manifests.has(d)) continue;
    const head = await request(`${registryUrl}/v2/${repo}/blobs/${d}`, { method: 'HEAD', headers });
    await head.body.dump();
    if (head.statusCode === 200) continue;
    const start = await request(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
    await start.body.dump();
    if (start.statusCode !== 202) throw new Error(`push ${repo}: upload start answered ${start.statusCode}`);
    const loc = new URL(String(start.headers.location), registryUrl);
    loc.searchParams.set('digest', d);
    const put = await request(loc, {
      method: 'PUT',
      body: b,
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(b.length) },
    });
    const text = await put.body.text();
    if (put.statusCode !== 201) throw new Error(`push ${repo} blob ${d}: ${put.statusCode} ${text}`);
  }
  const putManifest = async (ref: string, desc: Desc, bytes: Buffer) => {
    const res = await request(`${registryUrl}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      body: bytes,
      headers: { ...headers, 'content-type': desc.mediaType },
    });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`push ${repo} manifest ${ref}: ${res.statusCode} ${text}`);
  };
  for (const i of ordered.slice(0, -1)) await putManifest(i.root.digest, i.root, i.rootBytes);
  await putManifest(tag, img.root, img.rootBytes);
}
