/** OCI and Docker media types berth understands, and small predicates over them. */

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ociLayout: 'application/vnd.oci.layout.header.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1SignedManifest: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The Accept header values used to resolve a reference, as containerd sends them. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  '*/*',
];

export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaTypes.ociIndex || mt === MediaTypes.dockerManifestList;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MediaTypes.ociManifest || mt === MediaTypes.dockerManifest;
}

export function isSchema1Type(mt: string | undefined): boolean {
  return mt === MediaTypes.dockerSchema1Manifest || mt === MediaTypes.dockerSchema1SignedManifest;
}

export function isConfigType(mt: string | undefined): boolean {
  return mt === MediaTypes.ociConfig || mt === MediaTypes.dockerConfig;
}

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/**
 * What a layer media type means: its compression, or `undefined` when the type is not a layer
 * berth can apply (unknown types are "not implemented", as in containerd).
 */
export function layerCompression(mt: string): LayerCompression | undefined {
  switch (mt) {
    case MediaTypes.ociLayer:
    case MediaTypes.dockerLayer:
    case MediaTypes.ociLayerNondistributable:
      return 'none';
    case MediaTypes.ociLayerGzip:
    case MediaTypes.dockerLayerGzip:
    case MediaTypes.dockerForeignLayer:
    case MediaTypes.ociLayerNondistributableGzip:
      return 'gzip';
    case MediaTypes.ociLayerZstd:
    case MediaTypes.dockerLayerZstd:
    case MediaTypes.ociLayerNondistributableZstd:
      return 'zstd';
    default:
      return undefined;
  }
}

/** Non-distributable (foreign) layers are never fetched from the registry that serves the image. */
export function isNonDistributable(mt: string): boolean {
  return mt.includes('nondistributable') || mt === MediaTypes.dockerForeignLayer;
}
