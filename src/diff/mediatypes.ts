/**
 * Which layer media types berth can apply, and how each is compressed. Unknown types and
 * non-distributable ("foreign") layers are refused with a clear Unimplemented error, as
 * containerd does ("not implemented"), rather than guessed at.
 */
import { unimplemented } from '../errors.ts';

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_TYPES: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
};

const NON_DISTRIBUTABLE = ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.docker.image.rootfs.foreign.diff.tar'];

/** The compression of a layer media type; Unimplemented for anything berth cannot apply. */
export function layerCompression(mediaType: string, digest = ''): Compression {
  const c = LAYER_TYPES[mediaType];
  if (c) return c;
  const at = digest ? ` (layer ${digest})` : '';
  if (NON_DISTRIBUTABLE.some((p) => mediaType.startsWith(p))) {
    throw unimplemented(`non-distributable layer${at}: media type ${mediaType} is not supported`);
  }
  throw unimplemented(`unknown layer media type ${JSON.stringify(mediaType)}${at}`);
}

export function isLayerMediaType(mediaType: string): boolean {
  return mediaType in LAYER_TYPES;
}
