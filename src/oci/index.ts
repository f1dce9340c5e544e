/** The OCI data model: media types, digests, references, platforms, manifests, chain IDs. */
export * from './media-types.ts';
export * from './digest.ts';
export * from './chain-id.ts';
export * from './types.ts';
export * from './reference.ts';
export * from './platform.ts';
