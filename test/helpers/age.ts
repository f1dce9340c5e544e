/** The age tool for tests, as an operator uses it: keys from age-keygen, values encrypted with `age -r … -a`. */
import { execFileSync } from 'node:child_process';

/** The ASCII-armored age file of `plaintext`, encrypted to `recipient`. */
export function ageEncrypt(plaintext: string, recipient: string): string {
  return execFileSync('age', ['--encrypt', '--recipient', recipient, '--armor'], { input: plaintext, encoding: 'utf8' });
}

/** The recipient of a fresh key that is thrown away (a device this secret is not for). */
export function strangerRecipient(): string {
  const key = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return execFileSync('age-keygen', ['-y'], { input: key, encoding: 'utf8' }).trim();
}
