/**
 * `[source.git.verify] mode = "gpg"`: the keyring (a GnuPG home holding only the allowed public
 * keys) decides. A commit signed by a key in it is applied, named by its user id; one signed by a
 * GPG key that is not in it is refused and nothing changes (real gpg, real git, file://).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { GitSource } from '../../src/source/git.ts';
import { GitFixture } from './git-fixture.ts';

const run = promisify(execFile);
let f: GitFixture;
let root: string;
const homes: Record<string, string> = {};
const keys: Record<string, string> = {};

async function gpgKey(name: string): Promise<void> {
  const home = join(f.dir, `gnupg-${name}`);
  await mkdir(home, { mode: 0o700 });
  await run('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--quick-gen-key', `${name} <${name}@fleet.example>`, 'ed25519', 'sign', 'never']);
  const out = (await run('gpg', ['--homedir', home, '--batch', '--with-colons', '--list-secret-keys'])).stdout;
  homes[name] = home;
  keys[name] = /^fpr:+([0-9A-F]+):/m.exec(out)![1]!;
}

beforeAll(async () => {
  f = await GitFixture.create();
  root = await mkdtemp(join(tmpdir(), 'berth-source-gpg-'));
  await gpgKey('release');
  await gpgKey('intruder');
  // The device's keyring: only release's public key.
  const keyring = join(f.dir, 'device-keyring');
  await mkdir(keyring, { mode: 0o700 });
  const pub = join(f.dir, 'release.asc');
  await writeFile(pub, (await run('gpg', ['--homedir', homes.release!, '--batch', '--armor', '--export', keys.release!])).stdout);
  await run('gpg', ['--homedir', keyring, '--batch', '--import', pub]);
  homes.device = keyring;
}, 120_000);

afterAll(async () => {
  for (const h of Object.values(homes)) await run('gpgconf', ['--homedir', h, '--kill', 'all']).catch(() => undefined);
  await f?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

const source = () =>
  new GitSource({
    root,
    config: { url: f.fileUrl, ref: 'main', path: '', intervalMs: 60_000, allowRewind: false, verify: { mode: 'gpg', keyring: homes.device! } },
    log: createLogger({ level: 'silent' }),
  });

describe('gpg verification', () => {
  let good: string;
  it('applies a commit signed by a key in the keyring', async () => {
    good = await f.commit({ 'web.yaml': 'v: 1\n' }, { gnupgHome: homes.release!, key: keys.release! });
    const s = await source().sync(new AbortController().signal);
    expect(s).toMatchObject({ state: 'Ready', reason: 'Applied', applied: good, signer: 'release <release@fleet.example>' });
  });

  it('refuses a commit signed by a GPG key not in the keyring', async () => {
    const bad = await f.commit({ 'web.yaml': 'v: 2\n' }, { gnupgHome: homes.intruder!, key: keys.intruder! });
    const s = await source().sync(new AbortController().signal);
    expect(s).toMatchObject({ state: 'Stalled', reason: 'SignerNotAllowed', fetched: bad, applied: good });
    expect(await readlink(join(root, 'sources', 'current'))).toBe(good);
  });
});
