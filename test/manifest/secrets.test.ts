/**
 * The `Secret` kind in the manifests (no root, no decryption): validation with file:line:col and
 * never quoting a value, references from containers, the ciphertext's digest in the spec hash,
 * and plan() holding back only the containers whose secret the device cannot decrypt.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';
import { describeSpecChanges } from '../../src/manifest/spec-diff.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { plan } from '../../src/reconcile/plan.ts';
import type { ActualState } from '../../src/reconcile/types.ts';
import { ageEncrypt, strangerRecipient } from '../helpers/age.ts';

let validator: DocumentValidator;
let recipient: string;
beforeAll(async () => {
  validator = await createDocumentValidator();
  recipient = strangerRecipient(); // the loader never decrypts: any recipient will do
});

async function encrypt(plaintext: string): Promise<string> {
  return ageEncrypt(plaintext, recipient);
}

const HEAD = 'apiVersion: berth.dev/v1alpha1';
const indent = (text: string, n: number) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `${' '.repeat(n)}${l}`)
    .join('\n');
const secret = (name: string, data: Record<string, string>) =>
  `${HEAD}\nkind: Secret\nmetadata: {name: ${name}}\nspec:\n  data:\n${Object.entries(data)
    .map(([k, v]) => `    ${k}: |\n${indent(v, 6)}`)
    .join('\n')}\n`;
const ctr = (name: string, lines: string[]) => `${HEAD}\nkind: Container\nmetadata: {name: ${name}}\nspec:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
const docs = (...d: string[]) => d.join('---\n');

function load(yaml: string): { state?: DesiredState; problems: string[] } {
  const r = parseManifestSources([{ file: 'm.yaml', text: yaml }], validator);
  return { state: r.state, problems: r.problems.map(formatProblem) };
}
function desiredOf(yaml: string): DesiredState {
  const r = load(yaml);
  expect(r.problems).toEqual([]);
  return r.state!;
}

describe('Secret documents', () => {
  it('load with their ciphertext only, and containers record the digest of each secret they use', async () => {
    const d = desiredOf(
      docs(
        secret('db', { DB_PASSWORD: await encrypt('hunter2') }),
        secret('tls', { 'tls.key': await encrypt('-----BEGIN KEY-----') }),
        ctr('app', ['image: busybox:1', 'envFrom: [{secret: db}]', 'mounts: [{type: secret, name: tls, key: tls.key, target: /run/secrets/tls.key}]']),
        ctr('other', ['image: busybox:1']),
      ),
    );
    expect(d.secrets?.map((s) => s.metadata.name)).toEqual(['db', 'tls']);
    expect(JSON.stringify(d)).not.toContain('hunter2');
    const [app, other] = d.containers;
    expect(Object.keys(app!.secretDigests ?? {}).sort()).toEqual(['db', 'tls']);
    expect(normaliseContainerSpec(app!).secrets).toEqual(app!.secretDigests);
    expect(normaliseContainerSpec(app!).mounts).toEqual([{ type: 'secret', name: 'tls', key: 'tls.key', target: '/run/secrets/tls.key' }]);
    // A container that uses no secret keeps the spec (and hash) it had before secrets existed.
    expect(normaliseContainerSpec(other!)).not.toHaveProperty('secrets');
    expect(normaliseContainerSpec(other!)).not.toHaveProperty('envFrom');
  });

  it('a new ciphertext changes the spec hash of the containers that use it (and says which secret), blank space around the armor does not', async () => {
    const user = ctr('app', ['image: busybox:1', 'mounts: [{type: secret, name: db, target: /run/secrets/db}]']);
    const a = await encrypt('one');
    const hash = (yaml: string) => containerSpecHash(desiredOf(yaml).containers[0]!, 'sha256:aa');
    const before = hash(docs(secret('db', { pw: a }), user));
    expect(hash(docs(secret('db', { pw: `${a.replace(/\n/g, '\r\n')}\n\n` }), user))).toBe(before);
    const renewed = desiredOf(docs(secret('db', { pw: await encrypt('one') }), user)); // the same plaintext, encrypted again
    expect(containerSpecHash(renewed.containers[0]!, 'sha256:aa')).not.toBe(before);
    const old = normaliseContainerSpec(desiredOf(docs(secret('db', { pw: a }), user)).containers[0]!);
    expect(describeSpecChanges(old, normaliseContainerSpec(renewed.containers[0]!))).toEqual(['secret db changed']);
  });

  it('problems name file:line:col, and a plaintext written by mistake is never quoted back', async () => {
    const yaml = docs(
      `${HEAD}\nkind: Secret\nmetadata: {name: db}\nspec:\n  data:\n    password: hunter2\n    pin: 12345\n`,
      secret('api', { TOKEN: await encrypt('t'), 'not-env': await encrypt('x') }),
      ctr('app', [
        'image: busybox:1',
        'env: {TOKEN: plain}',
        'envFrom: [{secret: api}, {secret: nope}]',
        'mounts: [{type: secret, name: missing, target: /a}, {type: secret, name: api, key: NOKEY, target: /b}]',
      ]),
    );
    const { problems } = load(yaml);
    expect(problems.join('\n')).not.toMatch(/hunter2|12345/);
    expect(problems).toEqual([
      expect.stringMatching(/^m\.yaml:6:15: spec\.data\.password: not an age-encrypted value/),
      expect.stringMatching(/^m\.yaml:7:10: spec\.data\.pin: not an age-encrypted value/),
      expect.stringMatching(/^m\.yaml:37:22: spec\.envFrom\[0\]\.secret: TOKEN is set both by Secret "api" and by env/),
      expect.stringMatching(/^m\.yaml:37:22: spec\.envFrom\[0\]\.secret: key "not-env" of Secret "api" is not an environment variable name/),
      expect.stringMatching(/^m\.yaml:37:37: spec\.envFrom\[1\]\.secret: no Secret named "nope"/),
      expect.stringMatching(/^m\.yaml:38:33: spec\.mounts\[0\]\.name: no Secret named "missing"/),
      expect.stringMatching(/^m\.yaml:38:86: spec\.mounts\[1\]\.key: Secret "api" has no key "NOKEY"/),
    ]);
  });

  it('a Secret with problems of its own is not reported again as missing by the containers that use it', () => {
    const { problems } = load(
      docs(`${HEAD}\nkind: Secret\nmetadata: {name: db}\nspec:\n  data: {}\n`, ctr('app', ['image: busybox:1', 'envFrom: [{secret: db}]'])),
    );
    expect(problems).toEqual([expect.stringMatching(/^m\.yaml:5:9: spec\.data: /)]);
  });
});

describe('plan() with a secret the device cannot decrypt', () => {
  it('holds back only the containers that use it, naming the secret and why', async () => {
    const d = desiredOf(
      docs(secret('db', { pw: await encrypt('x') }), ctr('app', ['image: busybox:1', 'envFrom: [{secret: db}]']), ctr('web', ['image: busybox:1'])),
    );
    const actual: ActualState = {
      images: [{ ref: 'docker.io/library/busybox:1', targetDigest: 'sha256:aa', manifestDigest: 'sha256:aa', blobsPresent: true, unpacked: true }],
      containers: [],
      volumes: [],
      unreachableRegistries: [],
      secretProblems: { db: "m.yaml:1:1: cannot be decrypted with the device's key /k: key pw: no identity matched any of the recipients" },
    };
    const steps = plan(d, actual, 0);
    expect(steps.map((s) => [s.kind, s.reason])).toEqual([
      ['create', 'web: create (not present)'],
      ['wait', "app: create waits for secret db (m.yaml:1:1: cannot be decrypted with the device's key /k: key pw: no identity matched any of the recipients)"],
    ]);
    // Without the problem it is created like any other.
    expect(plan(d, { ...actual, secretProblems: undefined }, 0).map((s) => s.id)).toEqual(['container:app', 'container:web']);
  });
});
