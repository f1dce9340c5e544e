/**
 * Descriptors, manifests, indexes and image configs (OCI image-spec; Docker schema 2 is the same
 * shape under other media types), with parsers that check what berth relies on and say what is
 * wrong and where (`where` names the ref or the digest the JSON came from).
 */
import { invalidArgument, unimplemented } from '../errors.ts';
import { assertDigest } from './digest.ts';
import { isConfigType, isIndexType, isManifestType, isSchema1Type } from './media-types.ts';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Volumes?: Record<string, object>;
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Array<Record<string, unknown>>;
}

function parseJson(bytes: Uint8Array | string, where: string, what: string): any {
  try {
    const v = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (err: any) {
    throw invalidArgument(`${where}: ${what} is not valid JSON: ${err.message}`, { cause: err });
  }
}

/** Check a descriptor's shape; `at` says where it sits (e.g. "layers[2]"). */
export function parseDescriptor(v: any, where: string, at: string): Descriptor {
  if (v === null || typeof v !== 'object') throw invalidArgument(`${where}: ${at} is not a descriptor object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw invalidArgument(`${where}: ${at}.mediaType is missing`);
  try {
    assertDigest(v.digest, `${at}.digest`);
  } catch (err: any) {
    throw invalidArgument(`${where}: ${err.message}`, { cause: err });
  }
  if (!Number.isSafeInteger(v.size) || v.size < 0) throw invalidArgument(`${where}: ${at}.size must be a non-negative integer`);
  if (v.platform !== undefined) {
    if (typeof v.platform?.os !== 'string' || typeof v.platform?.architecture !== 'string') {
      throw invalidArgument(`${where}: ${at}.platform needs "os" and "architecture" strings`);
    }
  }
  return v as Descriptor;
}

function refuseSchema1(v: any, mediaType: string | undefined, where: string): void {
  if (isSchema1Type(mediaType) || isSchema1Type(v.mediaType) || v.schemaVersion === 1) {
    throw unimplemented(`${where}: Docker image manifest schema 1 is not supported (deprecated since 2017); push the image again with a current client`);
  }
}

/** What a manifest-ish JSON document is: an index or an image manifest. */
export function parseManifestOrIndex(
  bytes: Uint8Array | string,
  mediaType: string | undefined,
  where: string,
): { kind: 'index'; index: Index } | { kind: 'manifest'; manifest: Manifest } {
  const v = parseJson(bytes, where, 'manifest');
  refuseSchema1(v, mediaType, where);
  const mt = isIndexType(mediaType) || isManifestType(mediaType) ? mediaType : v.mediaType;
  const looksIndex = isIndexType(mt) || (mt === undefined && Array.isArray(v.manifests));
  if (looksIndex) return { kind: 'index', index: parseIndex(bytes, where, v) };
  if (isManifestType(mt) || (mt === undefined && v.config !== undefined)) {
    return { kind: 'manifest', manifest: parseManifest(bytes, where, v) };
  }
  throw unimplemented(`${where}: unsupported manifest media type "${mt ?? '(none)'}"`);
}

export function parseIndex(bytes: Uint8Array | string, where: string, parsed?: any): Index {
  const v = parsed ?? parseJson(bytes, where, 'index');
  refuseSchema1(v, undefined, where);
  if (v.schemaVersion !== 2) throw invalidArgument(`${where}: index schemaVersion must be 2`);
  if (!Array.isArray(v.manifests)) throw invalidArgument(`${where}: index has no "manifests" array`);
  v.manifests.forEach((d: any, i: number) => parseDescriptor(d, where, `manifests[${i}]`));
  return v as Index;
}

export function parseManifest(bytes: Uint8Array | string, where: string, parsed?: any): Manifest {
  const v = parsed ?? parseJson(bytes, where, 'manifest');
  refuseSchema1(v, undefined, where);
  if (v.schemaVersion !== 2) throw invalidArgument(`${where}: manifest schemaVersion must be 2`);
  parseDescriptor(v.config, where, 'config');
  if (!Array.isArray(v.layers)) throw invalidArgument(`${where}: manifest has no "layers" array`);
  v.layers.forEach((d: any, i: number) => parseDescriptor(d, where, `layers[${i}]`));
  return v as Manifest;
}

export function parseImageConfig(bytes: Uint8Array | string, where: string): ImageConfig {
  const v = parseJson(bytes, where, 'image config');
  if (typeof v.os !== 'string' || typeof v.architecture !== 'string') {
    throw invalidArgument(`${where}: image config needs "os" and "architecture"`);
  }
  if (v.rootfs?.type !== 'layers' || !Array.isArray(v.rootfs?.diff_ids)) {
    throw invalidArgument(`${where}: image config needs rootfs.type "layers" and rootfs.diff_ids`);
  }
  v.rootfs.diff_ids.forEach((d: unknown, i: number) => {
    try {
      assertDigest(d, `rootfs.diff_ids[${i}]`);
    } catch (err: any) {
      throw invalidArgument(`${where}: ${err.message}`, { cause: err });
    }
  });
  return v as ImageConfig;
}

export { isConfigType };
