/**
 * Secrets encrypted with age to the device's key: decrypted only here, only in memory and into the
 * tmpfs at `<root>/run/secrets` (paths.ts), never into the content store, metadata.db, logs or events.
 *
 * Two verbs for the reconciler: `problems` (reads only, for `berth plan` too) says which secrets
 * the desired containers use cannot be decrypted, so only the containers that need them wait;
 * `provide` writes the decryptable ones to the tmpfs before containers are made or started.
 * Decryption is age's own: Debian's age tool, through pipes (age-tool.ts).
 */
import { rename, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, formatPlace } from '../errors.ts';
import type { Logger } from '../log.ts';
import { secretDigest, secretsInUse } from '../manifest/secret-refs.ts';
import type { DesiredState, SecretDoc } from '../manifest/types.ts';
import { ageDecrypt } from './age-tool.ts';
import { readIdentity, type DeviceIdentity } from './identity.ts';
import { secretDigestFile, secretPath, secretsDir } from './paths.ts';
import { ensureSecretsTmpfs } from './secrets-tmpfs.ts';

/** What the reconcile core asks of the secrets (ReconcileDeps.secrets). */
export interface SecretProvider {
  /** Why each secret the desired containers use cannot be given to them on this device, by name. Reads only. */
  problems(desired: DesiredState, signal?: AbortSignal): Promise<Record<string, string>>;
  /** Decrypt the secrets the desired containers use into the tmpfs (those that can be); drop the others. */
  provide(desired: DesiredState, signal?: AbortSignal): Promise<void>;
}

export class AgeSecrets implements SecretProvider {
  private readonly root: string;
  private readonly identityFile: string;
  private readonly log?: Logger;
  /** Each verdict (a problem, or '' for none) by key, ciphertext and secret: a turn decrypts only what is new. */
  private readonly verdicts = new Map<string, string>();
  /** What `problems` decrypted, for the next `provide` (so a new secret is decrypted once), which forgets it. */
  private readonly decrypted = new Map<string, { digest: string; values: Map<string, Uint8Array> }>();

  constructor(opts: { root: string; identityFile: string; log?: Logger }) {
    this.root = opts.root;
    this.identityFile = opts.identityFile;
    this.log = opts.log;
  }

  async problems(desired: DesiredState, signal?: AbortSignal): Promise<Record<string, string>> {
    const secrets = secretsInUse(desired);
    if (secrets.length === 0) return {};
    const id = await this.identity(signal);
    const out: Record<string, string> = {};
    for (const s of secrets) {
      const problem = typeof id === 'string' ? id : await this.verdict(s, id, signal);
      if (problem) out[s.metadata.name] = `${formatPlace(s.place)}: ${problem}`;
    }
    return out;
  }

  async provide(desired: DesiredState, signal?: AbortSignal): Promise<void> {
    try {
      const secrets = secretsInUse(desired);
      if (secrets.length) await ensureSecretsTmpfs(this.root, signal); // else never mounted: a device without secrets has none of this
      await this.dropOthers(new Set(secrets.map((s) => s.metadata.name)));
      const id = secrets.length ? await this.identity(signal) : '';
      if (typeof id === 'string') return; // problems() says so, for each container that needs one
      for (const s of secrets) {
        const name = s.metadata.name;
        const digest = secretDigest(s.spec);
        if (await this.onTmpfs(name, digest, id)) continue;
        let values = this.decrypted.get(name)?.digest === digest ? this.decrypted.get(name)!.values : undefined;
        try {
          values ??= await decrypt(s, this.identityFile, signal);
        } catch (err) {
          if (!(err instanceof BerthError)) throw err;
          continue; // the containers that need it wait (problems()); what an older ciphertext gave stays
        }
        try {
          await this.write(name, values, `${digest} ${id.fingerprint}`);
        } finally {
          for (const v of values.values()) v.fill(0);
        }
        this.log?.info({ secret: name }, `secret ${name} decrypted into the tmpfs`);
      }
    } finally {
      this.forgetDecrypted();
    }
  }

  /** The device's identity, or why it cannot be used (for every secret alike). */
  private async identity(signal?: AbortSignal): Promise<DeviceIdentity | string> {
    try {
      return await readIdentity(this.identityFile, signal);
    } catch (err) {
      if (!(err instanceof BerthError)) throw err;
      return `cannot be decrypted: ${err.message}`;
    }
  }

  /**
   * Whether the tmpfs holds this ciphertext's values, decrypted with this key: then it is known to
   * decrypt without running age again (a `berth apply` or `plan` is a new process, with no verdicts).
   */
  private async onTmpfs(name: string, digest: string, id: DeviceIdentity): Promise<boolean> {
    return (await readFile(secretDigestFile(this.root, name), 'utf8').catch(() => '')) === `${digest} ${id.fingerprint}`;
  }

  private async verdict(s: SecretDoc, id: DeviceIdentity, signal?: AbortSignal): Promise<string> {
    const name = s.metadata.name;
    const digest = secretDigest(s.spec);
    const key = `${id.fingerprint}\0${name}\0${digest}`;
    let v = this.verdicts.get(key);
    if (v === undefined) {
      if (await this.onTmpfs(name, digest, id)) v = '';
      else {
        try {
          this.decrypted.set(name, { digest, values: await decrypt(s, this.identityFile, signal) });
          v = '';
        } catch (err) {
          if (!(err instanceof BerthError)) throw err;
          // What age said stands for this key and ciphertext; a missing or killed age may do better next turn.
          if (err.kind === 'Unavailable') return err.message;
          v = err.message;
        }
      }
      if (this.verdicts.size > 1000) this.verdicts.clear();
      this.verdicts.set(key, v);
    }
    return v;
  }

  private forgetDecrypted(): void {
    for (const { values } of this.decrypted.values()) for (const b of values.values()) b.fill(0);
    this.decrypted.clear();
  }

  /**
   * Replace the secret's files key by key (each a rename, so a container that binds the whole
   * directory never reads half a value), then record the ciphertext's digest and the key's
   * fingerprint: a crash in between leaves no record, and the next turn writes them all again.
   */
  private async write(name: string, values: Map<string, Uint8Array>, marker: string): Promise<void> {
    const dir = secretPath(this.root, name);
    await rm(secretDigestFile(this.root, name), { force: true });
    // 0755/0444: readable by any user of the containers that mount them (as Docker's secrets are);
    // the host's other users cannot reach them through <root>/run/secrets, which is 0700.
    await mkdir(dir, { recursive: true, mode: 0o755 });
    for (const [key, value] of values) await replaceFile(path.join(dir, key), value, 0o444);
    for (const old of await readdir(dir)) if (!values.has(old)) await rm(path.join(dir, old), { force: true });
    await replaceFile(secretDigestFile(this.root, name), marker, 0o600);
  }

  /** Secrets no desired container uses any more leave the tmpfs. */
  private async dropOthers(keep: Set<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(secretsDir(this.root));
    } catch (err: any) {
      if (err?.code === 'ENOENT') return;
      throw err;
    }
    for (const n of names) {
      const secret = n.startsWith('.') ? n.slice(1, -'.digest'.length) : n;
      if (keep.has(secret)) continue;
      await rm(path.join(secretsDir(this.root), n), { recursive: true, force: true });
      if (!n.startsWith('.')) this.log?.info({ secret }, `secret ${secret} removed from the tmpfs (no container uses it)`);
    }
  }
}

/** Every value of the secret, decrypted in memory; a BerthError naming the secret, the key and the place otherwise. */
async function decrypt(s: SecretDoc, identityFile: string, signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const [key, value] of Object.entries(s.spec.data)) {
    try {
      out.set(key, await ageDecrypt(identityFile, value, signal));
    } catch (err) {
      for (const b of out.values()) b.fill(0);
      if (!(err instanceof BerthError)) throw err;
      throw new BerthError(err.kind, `cannot be decrypted with the device's key ${identityFile}: key ${key}: ${err.message}`, { cause: err, place: s.place });
    }
  }
  return out;
}

/** Write to a temp name and rename: on a tmpfs nothing is synced (nothing there outlives a reboot anyway). */
async function replaceFile(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, file);
}
