/**
 * Secrets as a container's env, without the values ever reaching the disk. runc reads a task's env
 * from its bundle's config.json, and `runc exec` reads it again later, so a container whose env
 * holds secrets gets a second bundle on the tmpfs at each start: the on-disk config.json (which has
 * no secret values) with the secrets' values added and its rootfs named by absolute path. Its
 * writable layer, logs and record stay where they are.
 */
import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerSpec } from '../manifest/types.ts';
import { secretBundleDir, secretPath, SecretNotReadyError } from './paths.ts';
import { ensureSecretsTmpfs } from './secrets-tmpfs.ts';

const NOT_READY = 'is not decrypted on this device (the device key cannot open it, or berth has not provided it yet)';

/** Every key of each secret with its value, from the tmpfs. SecretNotReadyError if one is not there. */
export async function readSecretEnv(root: string, secrets: string[]): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const name of secrets) {
    let keys: string[];
    try {
      keys = await readdir(secretPath(root, name));
    } catch (err: any) {
      if (err?.code === 'ENOENT') throw new SecretNotReadyError(name, NOT_READY);
      throw err;
    }
    for (const key of keys.sort()) env[key] = await readFile(secretPath(root, name, key), 'utf8');
  }
  return env;
}

/** `NAME=value` lines with each secret value set (over the image's; the loader keeps them apart from `env`). */
export function withSecretEnv(env: string[], values: Record<string, string>): string[] {
  const out = env.filter((kv) => !Object.hasOwn(values, kv.slice(0, kv.indexOf('='))));
  return [...out, ...Object.entries(values).map(([k, v]) => `${k}=${v}`)];
}

/** The secrets a container's spec needs are in the tmpfs (checked before an old container is stopped). */
export async function checkSecretsReady(root: string, spec: Pick<ContainerSpec, 'mounts' | 'envFrom'>): Promise<void> {
  const needed = [
    ...spec.mounts.flatMap((m) => (m.type === 'secret' ? [{ secret: m.name, path: secretPath(root, m.name, m.key) }] : [])),
    ...(spec.envFrom ?? []).map((e) => ({ secret: e.secret, path: secretPath(root, e.secret) })),
  ];
  for (const { secret, path: p } of needed) {
    try {
      await stat(p);
    } catch (err: any) {
      if (err?.code === 'ENOENT') throw new SecretNotReadyError(secret, NOT_READY);
      throw err;
    }
  }
}

/**
 * Write the tmpfs bundle of the container whose directory is `containerDir` (runtime id `id`): its
 * on-disk config.json plus the env of `secrets`. Returns the bundle directory to run the task from.
 */
export async function writeSecretBundle(root: string, id: string, containerDir: string, secrets: string[], signal?: AbortSignal): Promise<string> {
  const values = await readSecretEnv(root, secrets);
  const config = JSON.parse(await readFile(path.join(containerDir, 'config.json'), { encoding: 'utf8', signal }));
  config.root.path = path.resolve(containerDir, config.root.path);
  config.process.env = withSecretEnv(config.process.env, values);
  await ensureSecretsTmpfs(root, signal);
  const bundle = secretBundleDir(root, id);
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config), { mode: 0o600 });
  return bundle;
}
