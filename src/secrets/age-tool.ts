/**
 * The age tool (Debian's `age` and `age-keygen`, the reference implementation) does the
 * cryptography: one short process per value, the ciphertext in through a pipe and the plaintext
 * out through another, so nothing touches the disk and no crypto code stays resident in berth.
 * (The age-encryption library in-process cost the daemon about 30 MiB of resident memory for good,
 * measured when it decrypted its first secret; a process costs ~5 MiB for ~40 ms, and runs only for
 * a ciphertext berth has not seen.)
 */
import { execFile } from 'node:child_process';
import { BerthError } from '../errors.ts';

/** A secret's value: far beyond any key, token or certificate a container needs. */
const MAX_PLAINTEXT_BYTES = 1 << 20;
const TIMEOUT_MS = 30_000;

/** Decrypt one age file (armored or binary) with the identity file; the error names age's reason. */
export function ageDecrypt(identityFile: string, ciphertext: string, signal?: AbortSignal): Promise<Buffer> {
  return run('age', ['--decrypt', '--identity', identityFile], ciphertext, signal);
}

/** A new identity file's text (comments with the creation time and public key, then the key). */
export async function ageKeygen(signal?: AbortSignal): Promise<string> {
  return (await run('age-keygen', [], undefined, signal)).toString('utf8');
}

/** The recipient (`age1…`) of an identity file. */
export async function ageRecipient(identityFile: string, signal?: AbortSignal): Promise<string> {
  return (await run('age-keygen', ['-y', identityFile], undefined, signal)).toString('utf8').trim();
}

function run(cmd: string, args: string[], input: string | undefined, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      // A clean environment: no AGE_* or plugin settings of whoever started berth.
      {
        encoding: 'buffer',
        maxBuffer: MAX_PLAINTEXT_BYTES,
        timeout: TIMEOUT_MS,
        killSignal: 'SIGKILL',
        signal,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        stdout.fill(0);
        // Unavailable: the tool could not say (missing, killed); FailedPrecondition: it refused the input.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(new BerthError('Unavailable', `${cmd} not found: install it with \`apt-get install age\``, { cause: err }));
        }
        if (signal?.aborted) return reject(err);
        const why = String(stderr)
          .split('\n')[0]!
          .replace(/^age(-keygen)?: error: /, '')
          .trim();
        if (!why)
          return reject(new BerthError('Unavailable', err.killed ? `${cmd} timed out after ${TIMEOUT_MS / 1000}s` : `${cmd}: ${err.message}`, { cause: err }));
        reject(new BerthError('FailedPrecondition', why, { cause: err }));
      },
    );
    child.stdin?.on('error', () => {}); // age may exit before reading it all; the callback reports why
    child.stdin?.end(input);
  });
}
