/** importImages(): layouts and archives from disk, multi-platform and partial, verified. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, buildIndex, writeDockerArchive, writeOciArchive, writeOciLayout } from '../helpers/images.ts';
import { importImages } from '../../src/images/import.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { isKind } from '../../src/errors.ts';

let tmp: string;
let store: LocalContentStore;
let metadata: Metadata;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-import-'));
  store = await openContentStore(join(tmp, 'root'));
  metadata = Metadata.open(join(tmp, 'root', 'metadata.db'));
});
afterEach(async () => {
  metadata.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('import', () => {
  it('imports a multi-platform OCI archive, recording the asked platform', async () => {
    const amd = await buildImage({ platform: 'linux/amd64', layers: [{ files: { a: '1' } }] });
    const arm = await buildImage({ platform: 'linux/arm/v7', layers: [{ files: { a: '2' } }], mediaTypes: 'docker' });
    const index = buildIndex([amd, arm], { attestation: true });
    await writeOciArchive(join(tmp, 'multi.tar'), index, 'registry.example/app:1.0');
    const r = await importImages({ path: join(tmp, 'multi.tar'), store, metadata, platform: 'linux/arm/v7' });
    expect(r.format).toBe('oci-archive');
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({
      name: 'registry.example/app:1.0',
      manifestDigest: arm.root.digest,
      platform: 'linux/arm/v7',
      target: { digest: index.root.digest },
    });
    for (const d of [...amd.layers!, ...arm.layers!]) expect(await store.has(d.digest)).toBe(true);
  });

  it('accepts a layout holding only some platforms of its index; the chosen one must be complete', async () => {
    const amd = await buildImage({ platform: 'linux/amd64', layers: [{ files: { a: '1' } }] });
    const arm = await buildImage({ platform: 'linux/arm64', layers: [{ files: { a: '2' } }] });
    await writeOciLayout(join(tmp, 'layout'), buildIndex([amd, arm]), 'v1');
    await unlink(join(tmp, 'layout/blobs/sha256', arm.layers![0]!.digest.slice(7)));
    const ok = await importImages({ path: join(tmp, 'layout'), store, metadata, platform: 'linux/amd64', name: 'local/app:v1' });
    expect(ok.records[0]).toMatchObject({ name: 'docker.io/local/app:v1', platform: 'linux/amd64' });
    const err = await importImages({ path: join(tmp, 'layout'), store, metadata, platform: 'linux/arm64' }).catch((e) => e);
    expect(isKind(err, 'NotFound')).toBe(true);
    expect(err.message).toContain(`blob ${arm.layers![0]!.digest}`);
    expect(err.message).toContain('is not in the archive');
  });

  it('converts a docker-archive into a schema 2 manifest whose layers match the diff_ids', async () => {
    const img = await buildImage({ layers: [{ files: { a: '1' } }, { files: { b: '2' } }], config: { Cmd: ['/bin/true'] } });
    await writeDockerArchive(join(tmp, 'd.tar'), img, 'myapp:2');
    const r = await importImages({ path: join(tmp, 'd.tar'), store, metadata });
    expect(r.format).toBe('docker-archive');
    const rec = r.records[0]!;
    expect(rec.name).toBe('docker.io/library/myapp:2');
    expect(rec.configDigest).toBe(img.config!.digest);
    const manifest = JSON.parse((await store.readBlob(rec.manifestDigest)).toString());
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.layers.map((l: any) => l.digest)).toEqual(img.diffIds);
    expect(manifest.layers[0].mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar');
  });

  it('holds a lease over every blob before it is committed, and drops it at the end', async () => {
    const img = await buildImage({ layers: [{ files: { a: '1' } }, { files: { b: '2' } }] });
    await writeDockerArchive(join(tmp, 'd.tar'), img, 'leased:1');
    const unleasedAtCommit: string[] = [];
    const spy: typeof store = Object.assign(Object.create(store), {
      writer: async (o: Parameters<typeof store.writer>[0]) => {
        const w = await store.writer(o);
        const commit = w.commit.bind(w);
        w.commit = async (size: number, digest: string) => {
          const leased = metadata.listLeases().flatMap((l) => l.resources.filter((r) => r.type === 'content').map((r) => r.key));
          if (!leased.includes(digest)) unleasedAtCommit.push(digest);
          await commit(size, digest);
        };
        return w;
      },
    });
    await importImages({ path: join(tmp, 'd.tar'), store: spy, metadata });
    expect(unleasedAtCommit).toEqual([]);
    expect(metadata.listLeases()).toEqual([]);
    for (const d of img.diffIds!) expect(await store.has(d)).toBe(true);
  });

  it('refuses what is not an image, naming the path', async () => {
    const err = await importImages({ path: join(tmp, 'nothing-here'), store, metadata }).catch((e) => e);
    expect(isKind(err, 'NotFound')).toBe(true);
    expect(err.message).toContain('nothing-here');
  });
});
