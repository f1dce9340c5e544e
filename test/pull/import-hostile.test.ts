/**
 * importImages() against archives and layouts made to deceive: a name pinned to a digest its
 * content does not have, layout blobs that are symlinks, FIFOs or sparse files, and metadata
 * entries too large to hold in memory. Each is refused with its kind, and nothing is recorded.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { buildImage, sha256, writeOciArchive, writeOciLayout, type BuiltImage } from '../helpers/images.ts';
import { importImages } from '../../src/images/import.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { isKind } from '../../src/errors.ts';
import { ARCHIVE_LIMITS } from '../../src/remotes/oci-layout.ts';

let tmp: string;
let store: LocalContentStore;
let metadata: Metadata;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-import-hostile-'));
  store = await openContentStore(join(tmp, 'root'));
  metadata = Metadata.open(join(tmp, 'root', 'metadata.db'));
});
afterEach(async () => {
  metadata.close();
  await rm(tmp, { recursive: true, force: true });
});

const blobFile = (layout: string, digest: string) => join(layout, 'blobs', 'sha256', digest.slice(7));

async function writeTar(path: string, entries: Array<{ name: string; data: Buffer }>): Promise<void> {
  const pack = tarStream.pack();
  const out = pipeline(pack, createWriteStream(path));
  for (const e of entries) pack.entry({ name: e.name, size: e.data.length, mode: 0o644 }, e.data);
  pack.finalize();
  await out;
}

describe('a name that carries a digest', () => {
  it('is recorded only when the content is that digest', async () => {
    const real = await buildImage({ layers: [{ files: { a: 'real' } }] });
    const other = await buildImage({ layers: [{ files: { a: 'evil' } }] });
    const pinned = `registry.example/app@${real.root.digest}`;

    // An archive that names itself after the real image's digest but holds another image.
    await writeOciArchive(join(tmp, 'evil.tar'), other, pinned);
    const err = await importImages({ path: join(tmp, 'evil.tar'), store, metadata }).catch((e) => e);
    expect(isKind(err, 'Corrupt'), String(err)).toBe(true);
    expect(err.message).toContain(other.root.digest);
    expect(metadata.getImage(pinned)).toBeUndefined();

    // --name is held to the same promise.
    const named = await importImages({ path: join(tmp, 'evil.tar'), store, metadata, name: pinned }).catch((e) => e);
    expect(isKind(named, 'Corrupt'), String(named)).toBe(true);
    expect(metadata.listImages()).toEqual([]);

    // The genuine archive is accepted under the pinned name.
    await writeOciArchive(join(tmp, 'real.tar'), real, pinned);
    const ok = await importImages({ path: join(tmp, 'real.tar'), store, metadata });
    expect(ok.records[0]).toMatchObject({ name: pinned, manifestDigest: real.root.digest });
  });
});

describe('OCI layout blobs are regular files of their declared size', () => {
  let img: BuiltImage;
  let layout: string;
  beforeEach(async () => {
    img = await buildImage({ layers: [{ files: { a: '1' } }] });
    layout = join(tmp, 'layout');
    await writeOciLayout(layout, img, 'v1');
  });

  it('refuses a blob that is a symlink, even to the right bytes', async () => {
    const layer = img.layers![0]!;
    await writeFile(join(tmp, 'outside'), img.blobs.get(layer.digest)!);
    await unlink(blobFile(layout, layer.digest));
    await symlink(join(tmp, 'outside'), blobFile(layout, layer.digest));
    const err = await importImages({ path: layout, store, metadata }).catch((e) => e);
    expect(isKind(err, 'InvalidArgument'), String(err)).toBe(true);
    expect(err.message).toContain('symlink');
    expect(await store.has(layer.digest)).toBe(false);
  });

  it('refuses a FIFO without blocking on it', async () => {
    const layer = img.layers![0]!;
    await unlink(blobFile(layout, layer.digest));
    execFileSync('mkfifo', [blobFile(layout, layer.digest)]);
    const err = await importImages({ path: layout, store, metadata }).catch((e) => e);
    expect(isKind(err, 'InvalidArgument'), String(err)).toBe(true);
    expect(err.message).toContain('not a regular file');
  });

  it('refuses a blob whose size is not the descriptor size, before reading it', async () => {
    const layer = img.layers![0]!;
    await truncate(blobFile(layout, layer.digest), layer.size + 1);
    const err = await importImages({ path: layout, store, metadata }).catch((e) => e);
    expect(isKind(err, 'Corrupt'), String(err)).toBe(true);
    expect(err.message).toContain(`the descriptor says ${layer.size}`);
  });

  it('refuses a sparse blob (holes cost nothing to make and long to hash)', async () => {
    // A layer of 64 MiB of zeros, honestly described, but stored as one big hole.
    const zeros = Buffer.alloc(64 << 20);
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(zeros), size: zeros.length };
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: img.config, layers: [layer] }),
    );
    const root = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length };
    const sparse = join(tmp, 'sparse');
    await writeOciLayout(
      sparse,
      {
        root,
        rootBytes: manifest,
        blobs: new Map([
          [root.digest, manifest],
          [img.config!.digest, img.blobs.get(img.config!.digest)!],
        ]),
      },
      'v1',
    );
    await writeFile(blobFile(sparse, layer.digest), '');
    await truncate(blobFile(sparse, layer.digest), layer.size);
    const err = await importImages({ path: sparse, store, metadata }).catch((e) => e);
    expect(isKind(err, 'InvalidArgument'), String(err)).toBe(true);
    expect(err.message).toContain('sparse');
    expect(await store.has(layer.digest)).toBe(false);
  });

  it('bounds index.json and manifest blobs', async () => {
    await writeFile(join(layout, 'index.json'), Buffer.alloc(ARCHIVE_LIMITS.metadataBytes + 1, 0x20));
    const big = await importImages({ path: layout, store, metadata }).catch((e) => e);
    expect(isKind(big, 'ResourceExhausted'), String(big)).toBe(true);
    expect(big.message).toContain('index.json');

    // A descriptor that claims a manifest of a gigabyte is refused before anything is read.
    const { platform: _p, ...desc } = img.root;
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...desc, size: 1 << 30 }] };
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    const huge = await importImages({ path: layout, store, metadata }).catch((e) => e);
    expect(isKind(huge, 'ResourceExhausted'), String(huge)).toBe(true);
    expect(huge.message).toContain(img.root.digest);
  });
});

describe('archive metadata entries are bounded', () => {
  it('refuses an image config larger than the limit before reading it into memory', async () => {
    const img = await buildImage({ layers: [{ files: { a: '1' } }] });
    const small = img.blobs.get(img.config!.digest)!;
    // Valid JSON, padded with spaces past the limit.
    const config = Buffer.concat([small, Buffer.alloc(ARCHIVE_LIMITS.configBytes + 1 - small.length, 0x20)]);
    const configDesc = { ...img.config!, digest: sha256(config), size: config.length };
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: img.root.mediaType, config: configDesc, layers: img.layers }));
    const root = { mediaType: img.root.mediaType, digest: sha256(manifest), size: manifest.length };
    const blobs = new Map([...img.blobs, [configDesc.digest, config], [root.digest, manifest]]);
    await writeOciArchive(join(tmp, 'big-config.tar'), { root, rootBytes: manifest, blobs }, 'registry.example/app:1');
    const err = await importImages({ path: join(tmp, 'big-config.tar'), store, metadata }).catch((e) => e);
    expect(isKind(err, 'ResourceExhausted'), String(err)).toBe(true);
    expect(err.message).toContain(configDesc.digest);
    expect(metadata.listImages()).toEqual([]);
  });

  it('refuses a manifest.json larger than the limit', async () => {
    await writeTar(join(tmp, 'big.tar'), [{ name: 'manifest.json', data: Buffer.alloc(ARCHIVE_LIMITS.metadataBytes + 1, 0x20) }]);
    const err = await importImages({ path: join(tmp, 'big.tar'), store, metadata }).catch((e) => e);
    expect(isKind(err, 'ResourceExhausted'), String(err)).toBe(true);
    expect(err.message).toContain('manifest.json');
  });

  it('refuses small entries that together exceed the limit', async () => {
    const eight = Buffer.alloc(8 << 20, 0x20);
    const count = Math.floor(ARCHIVE_LIMITS.smallTotalBytes / eight.length) + 1;
    await writeTar(
      join(tmp, 'many.tar'),
      Array.from({ length: count }, (_, i) => ({ name: `${i}.json`, data: eight })),
    );
    const err = await importImages({ path: join(tmp, 'many.tar'), store, metadata }).catch((e) => e);
    expect(isKind(err, 'ResourceExhausted'), String(err)).toBe(true);
    expect(err.message).toContain('small entries');
  });
});
