/**
 * Images from disk, for air-gapped devices: an OCI image layout directory, an OCI archive (the
 * layout as a tar), or a docker-archive (`docker save`: manifest.json, `<config>.json`, layer
 * tars). Every blob is copied into the content store through a verifying writer: a blob whose
 * bytes do not hash to its name is never committed. A docker-archive is converted into a Docker
 * schema 2 manifest (config + uncompressed or gzip layers) whose layers are checked against the
 * config's diff_ids.
 *
 * Newer `docker save` (Docker 25+) writes an OCI layout and manifest.json in the same tar; the OCI
 * layout is preferred then.
 */
import { constants as fsc, createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash, randomUUID } from 'node:crypto';
import tarStream from 'tar-stream';
import type { ContentStore } from '../content/content.ts';
import { corrupt, invalidArgument, isKind, notFound, resourceExhausted } from '../errors.ts';
import { assertDigest, sha256Digest } from '../oci/digest.ts';
import { MediaTypes, isIndexType, isManifestType } from '../oci/media-types.ts';
import { parseImageConfig, parseIndex, parseManifest, type Descriptor } from '../oci/types.ts';
import { storeBlob } from '../content/store-blob.ts';
import { ingestRef } from './ingest-ref.ts';

/** An archive entry up to this size that is not a blob is kept in memory (docker-archive configs, index.json, …). */
const SMALL_FILE = 8 << 20;
/**
 * Bounds on what an archive or layout can make berth hold in memory: a hostile archive of a
 * thousand 8 MiB "configs", or a terabyte `index.json`, must fail rather than exhaust memory.
 * containerd caps a manifest at 4 MiB too (`remotes/docker` fetcher, `MaxManifestSize`).
 */
export const ARCHIVE_LIMITS = {
  /** `oci-layout` holds one small JSON object. */
  ociLayoutBytes: 64 << 10,
  /** `index.json`, `manifest.json`, and every index or manifest blob. */
  metadataBytes: 4 << 20,
  /** An image config (read whole into memory; long build histories stay far below this). */
  configBytes: 16 << 20,
  /** All small entries of one archive together. */
  smallTotalBytes: 64 << 20,
  /** Entries of one archive (each costs a map slot or a content-store writer). */
  entries: 100_000,
};

/** Limit for a named metadata file, if it has one of its own. */
function metadataLimit(name: string): number | undefined {
  if (name === 'oci-layout') return ARCHIVE_LIMITS.ociLayoutBytes;
  if (name === 'index.json' || name === 'manifest.json') return ARCHIVE_LIMITS.metadataBytes;
  return undefined;
}

function tooLarge(where: string, size: number, limit: number): Error {
  return resourceExhausted(`${where}: ${size} bytes, more than the ${limit} bytes allowed`);
}

/** An index or manifest larger than any real one is refused before it is read into memory. */
function checkMetadataSize(desc: Descriptor, where: string): void {
  if ((isIndexType(desc.mediaType) || isManifestType(desc.mediaType)) && desc.size > ARCHIVE_LIMITS.metadataBytes) {
    throw tooLarge(`${where}: ${desc.mediaType} ${desc.digest}`, desc.size, ARCHIVE_LIMITS.metadataBytes);
  }
}

/**
 * Open a file of a layout directory for reading, refusing anything but a regular file of the
 * expected size: a symlink (to `/dev/zero`, or out of the layout), a FIFO (which would block the
 * read forever), a device, or a sparse file (a terabyte of holes costs nothing to make and hours
 * to hash). The checks are on the opened descriptor (O_NOFOLLOW, fstat), so the file cannot be
 * swapped between the check and the read; O_NONBLOCK keeps the open of a FIFO from hanging.
 */
async function openLayoutFile(path: string, expect: { size?: number; maxSize?: number }, what: string) {
  let fh;
  try {
    fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err: any) {
    if (err?.code === 'ENOENT') throw notFound(`${what} is missing (${path})`);
    if (err?.code === 'ELOOP') throw invalidArgument(`${what}: ${path} is a symlink; a layout's files must be regular files`);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw invalidArgument(`${what}: ${path} is not a regular file`);
    if (expect.size !== undefined && st.size !== expect.size) throw corrupt(`${what}: ${path} is ${st.size} bytes, the descriptor says ${expect.size}`);
    if (expect.maxSize !== undefined && st.size > expect.maxSize) throw tooLarge(`${what}: ${path}`, st.size, expect.maxSize);
    // Allocated blocks cover a regular file's size (rounded up to a block); a file missing more
    // than a MiB of them is mostly holes.
    if (st.blocks * 512 + (1 << 20) < st.size) throw invalidArgument(`${what}: ${path} is a sparse file (${st.size} bytes, ${st.blocks * 512} allocated)`);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Read a small file of a layout directory, bounded (see openLayoutFile). */
async function readLayoutFile(path: string, maxSize: number, what: string): Promise<Buffer> {
  const fh = await openLayoutFile(path, { maxSize }, what);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** One image found in the layout: the name it was tagged with (if any) and its root descriptor. */
export interface LayoutImage {
  /** `io.containerd.image.name`, else `org.opencontainers.image.ref.name` (OCI), or a RepoTag (docker-archive), as written. */
  name?: string;
  desc: Descriptor;
}

export interface ImportedLayout {
  format: 'oci-layout' | 'oci-archive' | 'docker-archive';
  images: LayoutImage[];
}

async function has(store: ContentStore, digest: string): Promise<boolean> {
  return store.info(digest).then(
    () => true,
    (e) => (isKind(e, 'NotFound') ? false : Promise.reject(e)),
  );
}

/** Copy one blob stream into the store, verified against `digest` (and `size` if known). */
async function ingestStream(
  store: ContentStore,
  ref: string,
  digest: string,
  size: number | undefined,
  source: AsyncIterable<unknown>,
  where: string,
  signal?: AbortSignal,
): Promise<void> {
  if (await has(store, digest)) {
    for await (const _ of source); // drain: the next tar entry starts after this one
    return;
  }
  const w = await store.writer({ ref, expected: digest, total: size, signal });
  try {
    if (w.offset > 0) await w.truncate();
    let n = 0;
    for await (const chunk of source) {
      await w.write(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    await w.commit(size ?? n, digest).catch((err) => {
      if (isKind(err, 'Corrupt')) throw corrupt(`${where}: ${err.message}`, { cause: err });
      throw err;
    });
  } catch (err) {
    await w.close().catch(() => {});
    throw err;
  }
}

/** Walk index → manifests → config and layers; check each is committed and matches its descriptor. */
async function checkComplete(store: ContentStore, desc: Descriptor, where: string, signal?: AbortSignal): Promise<void> {
  const info = await store.info(desc.digest).catch((err) => {
    if (isKind(err, 'NotFound')) throw notFound(`${where}: blob ${desc.digest} (${desc.mediaType}) is missing from the archive`);
    throw err;
  });
  if (info.size !== desc.size) throw corrupt(`${where}: blob ${desc.digest} is ${info.size} bytes, the descriptor says ${desc.size}`);
  checkMetadataSize(desc, where);
  if (isIndexType(desc.mediaType)) {
    const index = parseIndex(await store.readBlob(desc.digest, signal), `${where} ${desc.digest}`);
    for (const m of index.manifests) {
      if (m.platform?.os === 'unknown') continue; // attestations: optional
      if (isIndexType(m.mediaType) || isManifestType(m.mediaType)) await checkComplete(store, m, where, signal);
    }
  } else if (isManifestType(desc.mediaType)) {
    const m = parseManifest(await store.readBlob(desc.digest, signal), `${where} ${desc.digest}`);
    for (const d of [m.config, ...m.layers]) await checkComplete(store, d, where, signal);
  }
}

function layoutImages(indexBytes: Buffer, where: string): LayoutImage[] {
  const index = parseIndex(indexBytes, `${where}/index.json`);
  // containerd's `ctr export` writes the full name in `io.containerd.image.name` and only the tag in
  // the OCI annotation: prefer the full name, as `ctr import` does.
  return index.manifests.map((desc) => ({
    name: desc.annotations?.['io.containerd.image.name'] ?? desc.annotations?.['org.opencontainers.image.ref.name'],
    desc,
  }));
}

/** Import an OCI image layout directory. */
export async function importOciLayoutDir(dir: string, store: ContentStore, signal?: AbortSignal): Promise<ImportedLayout> {
  const layoutFile = await readLayoutFile(join(dir, 'oci-layout'), ARCHIVE_LIMITS.ociLayoutBytes, `${dir}: oci-layout`).catch((err) => {
    if (isKind(err, 'NotFound')) throw invalidArgument(`${dir}: not an OCI image layout (no oci-layout file)`);
    throw err;
  });
  try {
    if (JSON.parse(layoutFile.toString('utf8')).imageLayoutVersion === undefined) throw new Error('no imageLayoutVersion');
  } catch (err: any) {
    throw invalidArgument(`${dir}/oci-layout: ${err.message}`);
  }
  const images = layoutImages(await readLayoutFile(join(dir, 'index.json'), ARCHIVE_LIMITS.metadataBytes, `${dir}: index.json`), dir);
  const seen = new Set<string>();
  const copy = async (desc: Descriptor): Promise<void> => {
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    const path = join(dir, 'blobs', 'sha256', assertDigest(desc.digest).slice(7));
    checkMetadataSize(desc, dir);
    const fh = await openLayoutFile(path, { size: desc.size }, `${dir}: blob ${desc.digest} (${desc.mediaType})`);
    // The stream owns the descriptor from here: it closes it at its end, or when destroyed.
    const blob = fh.createReadStream({ highWaterMark: 1 << 20 });
    await ingestStream(store, ingestRef(desc), desc.digest, desc.size, blob, path, signal).finally(() => blob.destroy());
    if (isIndexType(desc.mediaType)) {
      const index = parseIndex(await store.readBlob(desc.digest, signal), path);
      for (const m of index.manifests) {
        if (m.platform?.os === 'unknown' || !(isIndexType(m.mediaType) || isManifestType(m.mediaType))) continue;
        // Layouts often hold only some platforms of an index (skopeo without --all): the missing
        // ones are skipped here; the platform actually chosen must be complete (checked on import).
        await copy(m).catch((err) => {
          if (!isKind(err, 'NotFound')) throw err;
        });
      }
    } else if (isManifestType(desc.mediaType)) {
      const m = parseManifest(await store.readBlob(desc.digest, signal), path);
      for (const d of [m.config, ...m.layers]) await copy(d);
    }
  };
  for (const img of images) await copy(img.desc);
  return { format: 'oci-layout', images };
}

/**
 * Import a tar: an OCI archive or a docker-archive. Blobs stream straight into the content store
 * (verified); small JSON files are kept in memory until the archive has been read.
 */
export async function importArchive(path: string, store: ContentStore, signal?: AbortSignal): Promise<ImportedLayout> {
  const small = new Map<string, Buffer>();
  /** docker-archive layer files: tar path → digest of its bytes and size. */
  const files = new Map<string, { digest: string; size: number; gzip: boolean }>();
  const extract = tarStream.extract();
  const clean = (n: string) => n.replace(/^\.\//, '').replace(/^\/+/, '');
  let entries = 0;
  let smallBytes = 0;

  extract.on('entry', (header, stream, next) => {
    const name = clean(header.name);
    const done = (err?: unknown) => (err ? next(err as Error) : next());
    // The entry stream is destroyed with the extractor's error, which the pipeline reports.
    const refuse = (err: Error) => {
      stream.on('error', () => {});
      stream.resume();
      setImmediate(() => done(err));
    };
    if (++entries > ARCHIVE_LIMITS.entries) return refuse(resourceExhausted(`${path}: more than ${ARCHIVE_LIMITS.entries} entries`));
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      stream.resume();
      stream.once('end', () => done());
      return;
    }
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    if (m) {
      const digest = `sha256:${m[1]}`;
      ingestStream(store, `import-${digest}`, digest, header.size, stream, `${path}: ${name}`, signal).then(() => done(), done);
      return;
    }
    const size = header.size ?? 0;
    const ownLimit = metadataLimit(name);
    if (ownLimit !== undefined && size > ownLimit) return refuse(tooLarge(`${path}: ${name}`, size, ownLimit));
    if (size <= SMALL_FILE && !name.endsWith('.tar')) {
      smallBytes += size;
      if (smallBytes > ARCHIVE_LIMITS.smallTotalBytes)
        return refuse(tooLarge(`${path}: its small entries together`, smallBytes, ARCHIVE_LIMITS.smallTotalBytes));
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.once('end', () => {
        small.set(name, Buffer.concat(chunks));
        done();
      });
      stream.once('error', done);
      return;
    }
    // A layer tar of a docker-archive: hash while storing, commit under its own digest.
    const hash = createHash('sha256');
    let first: Buffer | undefined;
    const ref = `import-${randomUUID()}`;
    (async () => {
      const w = await store.writer({ ref, signal });
      try {
        let n = 0;
        for await (const chunk of stream) {
          first ??= chunk as Buffer;
          hash.update(chunk as Buffer);
          await w.write(chunk as Buffer);
          n += (chunk as Buffer).length;
        }
        const digest = `sha256:${hash.digest('hex')}`;
        await w.commit(n, digest);
        files.set(name, { digest, size: n, gzip: first !== undefined && first[0] === 0x1f && first[1] === 0x8b });
      } catch (err) {
        await w.close().catch(() => {});
        throw err;
      }
    })().then(() => done(), done);
  });

  try {
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20, signal }), extract);
  } catch (err: any) {
    if (err?.kind) throw err;
    throw invalidArgument(`${path}: not a readable tar archive: ${err.message}`, { cause: err });
  }

  if (small.has('index.json') && small.has('oci-layout')) {
    const images = layoutImages(small.get('index.json')!, path);
    for (const img of images) await checkComplete(store, img.desc, path, signal);
    return { format: 'oci-archive', images };
  }
  if (small.has('manifest.json')) return { format: 'docker-archive', images: await convertDockerArchive(path, small, files, store, signal) };
  throw invalidArgument(`${path}: neither an OCI archive (index.json + oci-layout) nor a docker-archive (manifest.json)`);
}

async function convertDockerArchive(
  path: string,
  small: Map<string, Buffer>,
  files: Map<string, { digest: string; size: number; gzip: boolean }>,
  store: ContentStore,
  signal?: AbortSignal,
): Promise<LayoutImage[]> {
  let entries: any;
  try {
    entries = JSON.parse(small.get('manifest.json')!.toString('utf8'));
  } catch (err: any) {
    throw invalidArgument(`${path}: manifest.json is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(entries)) throw invalidArgument(`${path}: manifest.json is not a list`);
  const out: LayoutImage[] = [];
  for (const [i, e] of entries.entries()) {
    const where = `${path}: manifest.json[${i}]`;
    if (typeof e?.Config !== 'string' || !Array.isArray(e?.Layers)) throw invalidArgument(`${where}: needs "Config" and "Layers"`);
    const configBytes = small.get(e.Config);
    if (!configBytes) throw notFound(`${where}: config ${e.Config} is not in the archive`);
    const config = parseImageConfig(configBytes, `${where} ${e.Config}`);
    const configDigest = sha256Digest(configBytes);
    const named = /([a-f0-9]{64})\.json$/.exec(e.Config);
    if (named && `sha256:${named[1]}` !== configDigest) throw corrupt(`${where}: config ${e.Config} hashes to ${configDigest}`);
    if (config.rootfs.diff_ids.length !== e.Layers.length) {
      throw invalidArgument(`${where}: ${e.Layers.length} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`);
    }
    const layers: Descriptor[] = e.Layers.map((name: string, li: number) => {
      const f = files.get(name) ?? (small.has(name) ? undefined : undefined);
      if (!f) throw notFound(`${where}: layer ${name} is not in the archive`);
      // An uncompressed layer's digest is its diff_id; check it now (gzip ones are checked at unpack).
      if (!f.gzip && f.digest !== config.rootfs.diff_ids[li]) {
        throw corrupt(`${where}: layer ${name} hashes to ${f.digest}, the config's diff_id[${li}] is ${config.rootfs.diff_ids[li]}`);
      }
      return { mediaType: f.gzip ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer, digest: f.digest, size: f.size };
    });
    const configDesc: Descriptor = { mediaType: MediaTypes.dockerConfig, digest: configDigest, size: configBytes.length };
    await storeBlob(store, ingestRef(configDesc), configDigest, configBytes, signal);
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: configDesc, layers }));
    const desc: Descriptor = {
      mediaType: MediaTypes.dockerManifest,
      digest: sha256Digest(manifestBytes),
      size: manifestBytes.length,
      platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
    };
    await storeBlob(store, ingestRef(desc), desc.digest, manifestBytes, signal);
    const tags: string[] = Array.isArray(e.RepoTags) && e.RepoTags.length ? e.RepoTags : [undefined];
    for (const name of tags) out.push({ name, desc });
  }
  return out;
}

/** Import a layout dir, OCI archive or docker-archive, whichever `path` is. */
export async function importFromDisk(path: string, store: ContentStore, signal?: AbortSignal): Promise<ImportedLayout> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw notFound(`${path}: no such file or directory`);
  }
  return st.isDirectory() ? importOciLayoutDir(path, store, signal) : importArchive(path, store, signal);
}
