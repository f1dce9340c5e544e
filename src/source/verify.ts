/**
 * Is a fetched commit signed by an allowed key? git's own verification decides: `git
 * verify-commit` with `gpg.format=ssh` and the allowed-signers file (ssh-keygen -Y verify
 * underneath), or with GNUPGHOME set to the configured keyring (gpg). `%G?` then says why a commit
 * failed, so the status can name the reason without reading git's prose.
 */
import type { GitSourceConfig } from '../config/config.ts';
import type { GitRunner } from './git.ts';

export interface Refusal {
  ok: false;
  reason: 'NotSigned' | 'SignerNotAllowed' | 'BadSignature' | 'SignatureUnchecked';
  message: string;
}

export type Verdict = { ok: true; signer?: string } | Refusal;

type Verify = NonNullable<GitSourceConfig['verify']>;

/** The `-c` options that point git's verification at the configured trust. */
export function verifyConfig(v: Verify): string[] {
  return v.mode === 'ssh' ? ['-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${v.allowedSigners}`] : ['-c', 'gpg.format=openpgp'];
}

export async function verifyCommit(git: GitRunner, v: Verify, commit: string): Promise<Verdict> {
  const withTrust: GitRunner = (args, into) => git([...verifyConfig(v), ...args], into);
  // For gpg the runner's environment carries GNUPGHOME (the keyring): see GitSource.
  const verified = await withTrust(['verify-commit', commit]);
  const info = (await withTrust(['log', '-1', '--format=%G?%x00%GS%x00%GK', commit])).stdout.toString().trim().split('\0');
  const [code = 'N', signer = '', key = ''] = info;
  const c = commit.slice(0, 12);
  // gpg calls a key it has no trust path to "unknown validity" (U) however good the signature: the
  // keyring holds only allowed keys, so there U is accepted. For ssh, U means no allowed principal.
  if (verified.code === 0 && (code === 'G' || (v.mode === 'gpg' && code === 'U'))) return { ok: true, signer: signer || key };
  switch (code) {
    case 'N':
      return { ok: false, reason: 'NotSigned', message: `commit ${c} is not signed` };
    case 'U':
    case 'E':
      return { ok: false, reason: 'SignerNotAllowed', message: `commit ${c} not signed by an allowed key${key ? ` (signed with ${key})` : ''}` };
    case 'B':
      return { ok: false, reason: 'BadSignature', message: `commit ${c} has a bad signature${key ? ` (key ${key})` : ''}` };
    default:
      return {
        ok: false,
        reason: 'SignatureUnchecked',
        message: `commit ${c}: signature could not be accepted (git says ${code}${key ? `, key ${key}` : ''})`,
      };
  }
}
