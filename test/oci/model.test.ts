import { describe, expect, it } from 'vitest';
import { chainIds } from '../../src/oci/chain-id.ts';
import { sha256Digest, assertDigest } from '../../src/oci/digest.ts';
import { parseManifestOrIndex, parseImageConfig } from '../../src/oci/types.ts';
import { MediaTypes, layerCompression } from '../../src/oci/media-types.ts';
import { isKind } from '../../src/errors.ts';

const d = (c: string) => 'sha256:' + c.repeat(64);

describe('chain IDs', () => {
  it('follow the OCI algorithm', () => {
    const ids = chainIds([d('a'), d('b'), d('c')]);
    expect(ids[0]).toBe(d('a'));
    expect(ids[1]).toBe(sha256Digest(`${d('a')} ${d('b')}`));
    expect(ids[2]).toBe(sha256Digest(`${ids[1]} ${d('c')}`));
    expect(chainIds([])).toEqual([]);
  });
  it('reject bad diff ids', () => {
    expect(() => chainIds(['sha256:xyz'])).toThrow(/diff_id\[0\]/);
  });
});

describe('manifest parsing', () => {
  const cfg = { mediaType: MediaTypes.ociConfig, digest: d('1'), size: 2 };
  it('recognises a manifest and an index', () => {
    const m = parseManifestOrIndex(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: cfg, layers: [] }), undefined, 'r');
    expect(m.kind).toBe('manifest');
    const i = parseManifestOrIndex(JSON.stringify({ schemaVersion: 2, manifests: [cfg] }), MediaTypes.ociIndex, 'r');
    expect(i.kind).toBe('index');
  });
  it('refuses schema 1 clearly', () => {
    try {
      parseManifestOrIndex(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] }), MediaTypes.dockerSchema1SignedManifest, 'docker.io/x:1');
      expect.unreachable();
    } catch (e) {
      expect(isKind(e, 'Unimplemented')).toBe(true);
      expect((e as Error).message).toMatch(/docker.io\/x:1: Docker image manifest schema 1 is not supported/);
    }
  });
  it('names the bad field', () => {
    expect(() =>
      parseManifestOrIndex(
        JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: cfg, layers: [{ mediaType: 'x', digest: 'sha256:1', size: 1 }] }),
        undefined,
        'where',
      ),
    ).toThrow(/where: .*layers\[0\]\.digest/);
    expect(() => parseManifestOrIndex('{nope', undefined, 'where')).toThrow(/where: manifest is not valid JSON/);
    expect(() => parseImageConfig('{"os":"linux","architecture":"amd64"}', 'cfg')).toThrow(/cfg: image config needs rootfs/);
  });
  it('knows layer compressions', () => {
    expect(layerCompression(MediaTypes.dockerLayerGzip)).toBe('gzip');
    expect(layerCompression(MediaTypes.ociLayerZstd)).toBe('zstd');
    expect(layerCompression(MediaTypes.ociLayer)).toBe('none');
    expect(layerCompression('application/x-foo')).toBeUndefined();
    expect(() => assertDigest('sha512:abc')).toThrow(/only sha256/);
  });
});
