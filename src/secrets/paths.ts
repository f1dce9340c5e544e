/**
 * Where decrypted secrets live: `<root>/run/secrets`, a tmpfs of its own that berth mounts
 * (secrets-tmpfs.ts), never the disk (`<root>/run` itself also holds the networks' namespaces):
 *   run/secrets/values/<secret>/<key>    a secret's values, one file each (what containers bind)
 *   run/secrets/values/.<secret>.digest  the ciphertext digest and key fingerprint those files come from
 *   run/secrets/bundles/<container>/     the bundle (config.json) of a container whose env holds secrets
 * Pure path arithmetic, so the runtime can name a secret's file without knowing how it got there.
 */
import path from 'node:path';
import { BerthError } from '../errors.ts';

/** The tmpfs's mount point. */
export function secretsTmpfs(root: string): string {
  return path.join(root, 'run', 'secrets');
}

export function secretsDir(root: string): string {
  return path.join(secretsTmpfs(root), 'values');
}

/** A secret's directory, or with `key` the file of one of its values. */
export function secretPath(root: string, secret: string, key?: string): string {
  return key === undefined ? path.join(secretsDir(root), secret) : path.join(secretsDir(root), secret, key);
}

export function secretDigestFile(root: string, secret: string): string {
  return path.join(secretsDir(root), `.${secret}.digest`);
}

/** The bundle of a container (by its runtime id) whose config.json holds env from secrets. */
export function secretBundleDir(root: string, id: string): string {
  return path.join(secretsTmpfs(root), 'bundles', id);
}

/**
 * A secret a container needs is not decrypted on this device (no key, a key it was not encrypted
 * to, or not yet provided): FailedPrecondition, and this class so the reconciler waits (only that
 * container) instead of failing the rollout.
 */
export class SecretNotReadyError extends BerthError {
  readonly secret: string;

  constructor(secret: string, why: string) {
    super('FailedPrecondition', `secret ${secret} ${why}`, { place: { file: secret } });
    this.name = 'SecretNotReadyError';
    this.secret = secret;
  }
}
