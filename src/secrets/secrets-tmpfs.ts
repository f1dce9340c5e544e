/**
 * `<root>/run/secrets`: a small tmpfs for what must never be written to the SD card (decrypted secrets, the
 * bundles whose env holds them). Mounted on first need; it stays while containers bind files from
 * it and goes with a reboot, after which berth decrypts again from the manifests' ciphertext.
 */
import { isMountPoint, mountAll } from '../snapshots/mount.ts';
import { ensurePrivateDir } from '../private-file.ts';
import { secretsTmpfs } from './paths.ts';

/** Secrets are small; the bundles of containers with secret env take ~40 KiB each (the seccomp filter). */
const RUN_TMPFS_OPTIONS = ['mode=0700', 'size=16m', 'nosuid', 'nodev', 'noexec'];

/** Mount the tmpfs at `<root>/run/secrets` unless it is mounted already; returns its path. */
export async function ensureSecretsTmpfs(root: string, signal?: AbortSignal): Promise<string> {
  const dir = secretsTmpfs(root);
  ensurePrivateDir(dir);
  if (!(await isMountPoint(dir))) await mountAll([{ type: 'tmpfs', source: 'berth-run', options: RUN_TMPFS_OPTIONS }], dir, signal);
  return dir;
}
