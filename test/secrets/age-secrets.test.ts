/**
 * AgeSecrets on a real tmpfs (root): which secrets the device can decrypt, with the key's and the
 * document's place; what `provide` writes (only used secrets, only on the tmpfs, rewritten only
 * when the ciphertext changes, taken back when no container uses them); the device key refused
 * when others can read it. The reconciler around it is tested by test/e2e/secrets.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { AgeSecrets } from '../../src/secrets/age-secrets.ts';
import { deviceRecipient } from '../../src/secrets/identity.ts';
import { secretPath, secretsTmpfs } from '../../src/secrets/paths.ts';
import { ageEncrypt, strangerRecipient } from '../helpers/age.ts';
import { unmountUnder } from '../helpers/e2e.ts';

let dir: string;
let root: string;
let keyFile: string;
let recipient: string;
let validator: DocumentValidator;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('these tests mount a tmpfs: run them as root');
  dir = await mkdtemp(join(tmpdir(), 'berth-secrets-'));
  root = join(dir, 'root');
  keyFile = join(root, 'age.key');
  recipient = (await deviceRecipient(keyFile)).recipient;
  validator = await createDocumentValidator();
});

afterAll(async () => {
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
});

async function encrypt(plaintext: string, to = recipient): Promise<string> {
  return ageEncrypt(plaintext, to);
}

const HEAD = 'apiVersion: berth.dev/v1alpha1';
const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
const secret = (name: string, data: Record<string, string>) =>
  `${HEAD}\nkind: Secret\nmetadata: {name: ${name}}\nspec:\n  data:\n${Object.entries(data)
    .map(([k, v]) => `    ${k}: |\n${indent(v)}`)
    .join('\n')}\n`;
const user = (name: string, secretName: string) =>
  `${HEAD}\nkind: Container\nmetadata: {name: ${name}}\nspec:\n  image: busybox:1\n  mounts: [{type: secret, name: ${secretName}, target: /s}]\n`;

function desired(...docs: string[]): DesiredState {
  const r = parseManifestSources([{ file: 's.yaml', text: docs.join('---\n') }], validator);
  expect(r.problems).toEqual([]);
  return r.state!;
}

const isTmpfs = () => execFileSync('findmnt', ['-n', '-o', 'FSTYPE', secretsTmpfs(root)], { encoding: 'utf8' }).trim() === 'tmpfs';

describe('AgeSecrets', () => {
  it('the device key is owner-only and keeps its recipient', async () => {
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(recipient).toBe(execFileSync('age-keygen', ['-y', keyFile], { encoding: 'utf8' }).trim());
    expect(await deviceRecipient(keyFile)).toEqual({ recipient, created: false });
  });

  it('says which used secrets cannot be decrypted, where they are, and why; an unused one is not even tried', async () => {
    const stranger = strangerRecipient();
    const d = desired(
      secret('good', { a: await encrypt('A') }),
      secret('foreign', { a: await encrypt('A'), b: await encrypt('B', stranger) }),
      secret('unused', { a: await encrypt('A', stranger) }),
      user('one', 'good'),
      user('two', 'foreign'),
    );
    const secrets = new AgeSecrets({ root, identityFile: keyFile });
    expect(await secrets.problems(d)).toEqual({
      foreign: expect.stringMatching(
        new RegExp(`^s\\.yaml:\\d+:1: cannot be decrypted with the device's key ${keyFile}: key b: no identity matched any of the recipients$`),
      ),
    });

    const missing = new AgeSecrets({ root, identityFile: join(dir, 'nope.key') });
    expect(Object.keys(await missing.problems(d)).sort()).toEqual(['foreign', 'good']);
    expect((await missing.problems(d)).good).toMatch(/nope\.key does not exist \(create it with `berth secret recipient`/);

    await chmod(keyFile, 0o640);
    try {
      expect((await new AgeSecrets({ root, identityFile: keyFile }).problems(d)).good).toMatch(/age\.key is readable by others \(mode 0640\): refusing it/);
    } finally {
      await chmod(keyFile, 0o600);
    }
  });

  it('provides the used secrets on a tmpfs, rewrites them only for a new ciphertext, and takes back what no container uses', async () => {
    const secrets = new AgeSecrets({ root, identityFile: keyFile });
    await secrets.provide(desired(secret('db', { x: await encrypt('unused') })));
    expect(await readdir(join(root, 'run')).catch(() => [])).toEqual([]); // nothing used: nothing mounted

    const v1 = desired(secret('db', { pw: await encrypt('one'), user: await encrypt('admin') }), user('app', 'db'));
    await secrets.provide(v1);
    expect(isTmpfs()).toBe(true);
    expect(await readFile(secretPath(root, 'db', 'pw'), 'utf8')).toBe('one');
    expect((await stat(secretPath(root, 'db', 'pw'))).mode & 0o777).toBe(0o444);
    expect((await stat(secretsTmpfs(root))).mode & 0o777).toBe(0o700);

    // The same ciphertext: nothing is decrypted or written again (a tampered file stays as it is).
    await writeFile(secretPath(root, 'db', 'pw'), 'tampered');
    await secrets.provide(v1);
    expect(await readFile(secretPath(root, 'db', 'pw'), 'utf8')).toBe('tampered');

    await secrets.provide(desired(secret('db', { pw: await encrypt('two') }), user('app', 'db')));
    expect(await readFile(secretPath(root, 'db', 'pw'), 'utf8')).toBe('two');
    expect(await readdir(secretPath(root, 'db'))).toEqual(['pw']);

    await secrets.provide(desired(secret('db', { pw: await encrypt('two') })));
    expect(await readdir(join(secretsTmpfs(root), 'values'))).toEqual([]);
  });

  it('a missing age tool is a problem of that turn only (what age itself says is kept)', async () => {
    const d = desired(secret('late', { a: await encrypt('A') }), user('app', 'late'));
    const secrets = new AgeSecrets({ root, identityFile: keyFile });
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'no-such-bin');
    try {
      expect((await secrets.problems(d)).late).toMatch(/key a: age not found: install it with `apt-get install age`$/);
    } finally {
      process.env.PATH = path;
    }
    expect(await secrets.problems(d)).toEqual({});
  });

  it('runs age once per new value: the turn that finds a secret also provides it, and a new process trusts what the tmpfs holds for this key', async () => {
    // An `age` first on PATH that counts its runs, then runs the real one.
    const bin = join(dir, 'counting-bin');
    const count = join(dir, 'age-runs');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'age'), `#!/bin/sh\necho >> ${count}\nexec /usr/bin/age "$@"\n`, { mode: 0o755 });
    const runs = async () => (await readFile(count, 'utf8').catch(() => '')).length;
    const d = desired(secret('api', { a: await encrypt('A'), b: await encrypt('B') }), user('app', 'api'));
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const daemon = new AgeSecrets({ root, identityFile: keyFile });
      expect(await daemon.problems(d)).toEqual({});
      expect(await runs()).toBe(2);
      await daemon.provide(d);
      expect(await runs()).toBe(2);
      expect(await readFile(secretPath(root, 'api', 'b'), 'utf8')).toBe('B');
      expect(await daemon.problems(d)).toEqual({});
      expect(await new AgeSecrets({ root, identityFile: keyFile }).problems(d)).toEqual({}); // `berth plan`, `berth apply`
      expect(await runs()).toBe(2);
    } finally {
      process.env.PATH = path;
    }
  });
});
