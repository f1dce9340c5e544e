/** sha256 digests: `sha256:<64 lowercase hex>`. Only sha256 is supported (as by every registry in use). */
import { createHash, type Hash } from 'node:crypto';
import { invalidArgument } from '../errors.ts';

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** True for a well-formed sha256 digest. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Throws InvalidArgument (naming `what`) unless `s` is a well-formed sha256 digest. */
export function assertDigest(s: unknown, what = 'digest'): string {
  if (typeof s !== 'string' || !DIGEST_RE.test(s)) {
    if (typeof s === 'string' && /^[a-z0-9]+([+._-][a-z0-9]+)*:/.test(s) && !s.startsWith('sha256:')) {
      throw invalidArgument(`${what} "${s}": unsupported digest algorithm (only sha256)`);
    }
    throw invalidArgument(`${what} "${String(s)}" is not a sha256 digest (sha256:<64 hex>)`);
  }
  return s;
}

/** The hex part of a digest. */
export function digestHex(digest: string): string {
  return assertDigest(digest).slice('sha256:'.length);
}

/** sha256 of bytes (or a string, as UTF-8), as a digest. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A fresh incremental sha256 hasher. */
export function newHasher(): Hash {
  return createHash('sha256');
}
