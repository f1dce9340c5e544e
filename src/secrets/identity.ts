/**
 * The device's age identity (`[secrets] identity`, default `<root>/age.key`): the private key the
 * fleet's secrets are encrypted to, in age-keygen's format (comments, then `AGE-SECRET-KEY-1…`
 * lines). Like ssh with a private key, berth refuses one that others may read.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { failedPrecondition } from '../errors.ts';
import { ageKeygen, ageRecipient } from './age-tool.ts';

export interface DeviceIdentity {
  /** sha256 of the file: a new key invalidates what was decided with the old one. */
  fingerprint: string;
}

/** Group or world permission bits. */
const NOT_OWNER = 0o077;

/** Read the identity file; FailedPrecondition (naming the file) if it is missing, loose, or holds no key. */
export async function readIdentity(file: string, signal?: AbortSignal): Promise<DeviceIdentity> {
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err;
    throw failedPrecondition(
      `the device's age key ${file} does not exist (create it with \`berth secret recipient\`, which prints the recipient to encrypt to)`,
      { place: { file } },
    );
  }
  if (mode & NOT_OWNER) {
    throw failedPrecondition(`the device's age key ${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}): refusing it; chmod 600 ${file}`, {
      place: { file },
    });
  }
  const text = await readFile(file, { encoding: 'utf8', signal });
  const keys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (keys.length === 0 || keys.some((k) => !k.startsWith('AGE-SECRET-KEY-'))) {
    throw failedPrecondition(`${file}: not an age identity file (expected AGE-SECRET-KEY-… lines, as age-keygen writes)`, { place: { file } });
  }
  return { fingerprint: createHash('sha256').update(text).digest('hex') };
}

/**
 * The recipient (`age1…`) of the device's key, creating the key first if there is none (with
 * age-keygen): written owner-only with O_EXCL, so two callers never make two keys.
 */
export async function deviceRecipient(file: string): Promise<{ recipient: string; created: boolean }> {
  let created = false;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!(await stat(file).catch(() => undefined))) {
    const key = await ageKeygen();
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(key);
        await fh.sync();
      } finally {
        await fh.close();
      }
      created = true;
    } catch (err: any) {
      if (err?.code !== 'EEXIST') throw err;
    }
  }
  await readIdentity(file); // refuses a loose or malformed one
  return { recipient: await ageRecipient(file), created };
}
