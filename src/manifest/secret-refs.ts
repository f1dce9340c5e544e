/**
 * Containers and the `Secret` documents they use (mounts of type `secret`, `envFrom`): checked
 * across documents by the loader, each problem at its place, and resolved into the digest of each
 * secret's ciphertext, which goes into the container's spec hash (src/manifest/spec-hash.ts). So a
 * new ciphertext recreates the containers that use it, and berth never needs the plaintext to
 * know that: the plaintext is only ever read on the device, by src/secrets.
 */
import { createHash } from 'node:crypto';
import type { DocPath } from './source.ts';
import type { ContainerDoc, DesiredState, SecretDoc, SecretSpec } from './types.ts';

/** What `envFrom` accepts as a variable name (the same rule as `env`'s keys). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The armor age writes with `-a`; a schema error about a value under `spec.data` must not show it. */
export const SECRET_VALUE_HINT =
  'not an age-encrypted value: expected ASCII armor (-----BEGIN AGE ENCRYPTED FILE----- …); encrypt it to the device with `age -r <its recipient> -a` (berth secret recipient prints it), never write a plaintext here';

/** Whether a schema finding at `path` of a Secret document would quote a (possibly plaintext) value. */
export function quotesSecretValue(path: DocPath, atKey: boolean): boolean {
  return !atKey && path[0] === 'spec' && path[1] === 'data';
}

/** sha256 of the ciphertexts, key by key: what the spec hash holds for a secret. */
export function secretDigest(spec: SecretSpec): string {
  const h = createHash('sha256');
  for (const key of Object.keys(spec.data).sort()) h.update(`${key}\0${spec.data[key]}\0`);
  return `sha256:${h.digest('hex')}`;
}

/** The ciphertext as written, with the armor's surrounding blank space and CR dropped (they change nothing). */
export function normaliseSecretValue(value: string): string {
  return `${value.replace(/\r\n/g, '\n').trim()}\n`;
}

/** The secrets a container uses, by name, each once. */
export function secretsUsedBy(doc: Pick<ContainerDoc, 'spec'>): string[] {
  const names = [...doc.spec.mounts.flatMap((m) => (m.type === 'secret' ? [m.name] : [])), ...(doc.spec.envFrom ?? []).map((e) => e.secret)];
  return [...new Set(names)];
}

/** The Secrets the desired containers use (one no container names is never decrypted). */
export function secretsInUse(desired: Pick<DesiredState, 'containers' | 'secrets'>): SecretDoc[] {
  const used = new Set(desired.containers.flatMap((c) => secretsUsedBy(c)));
  return (desired.secrets ?? []).filter((s) => used.has(s.metadata.name));
}

type Report = (path: DocPath, message: string) => void;

/**
 * Check each container's references to secrets and record the digests of those it uses. `declared`
 * says whether a Secret of that name exists at all (one with problems of its own is not reported
 * again as missing); `secrets` holds the valid ones.
 */
export function resolveContainerSecrets(
  containers: { doc: ContainerDoc; report: Report }[],
  secrets: Map<string, SecretDoc>,
  declared: (name: string) => boolean,
): void {
  for (const { doc, report } of containers) {
    const missing = (name: string, path: DocPath, field: string) => {
      if (!declared(name)) report(path, `${field}: no Secret named "${name}" (declare it: kind: Secret, metadata.name: ${name})`);
    };
    doc.spec.mounts.forEach((m, i) => {
      if (m.type !== 'secret') return;
      const s = secrets.get(m.name);
      if (!s) return missing(m.name, ['spec', 'mounts', i, 'name'], `spec.mounts[${i}].name`);
      if (m.key !== undefined && !(m.key in s.spec.data)) {
        report(['spec', 'mounts', i, 'key'], `spec.mounts[${i}].key: Secret "${m.name}" has no key "${m.key}" (it has ${Object.keys(s.spec.data).join(', ')})`);
      }
    });
    const setBy = new Map<string, string>(Object.keys(doc.spec.env).map((k) => [k, 'env']));
    (doc.spec.envFrom ?? []).forEach((e, i) => {
      const s = secrets.get(e.secret);
      const where = `spec.envFrom[${i}].secret`;
      if (!s) return missing(e.secret, ['spec', 'envFrom', i, 'secret'], where);
      for (const key of Object.keys(s.spec.data)) {
        const other = setBy.get(key);
        if (!ENV_NAME.test(key))
          report(
            ['spec', 'envFrom', i, 'secret'],
            `${where}: key "${key}" of Secret "${e.secret}" is not an environment variable name (letters, digits, _; mount it as a file instead)`,
          );
        else if (other !== undefined)
          report(['spec', 'envFrom', i, 'secret'], `${where}: ${key} is set both by Secret "${e.secret}" and by ${other}; keep one`);
        else setBy.set(key, `Secret "${e.secret}"`);
      }
    });
    const used = secretsUsedBy(doc).filter((n) => secrets.has(n));
    if (used.length) doc.secretDigests = Object.fromEntries(used.map((n) => [n, secretDigest(secrets.get(n)!.spec)]));
  }
}
