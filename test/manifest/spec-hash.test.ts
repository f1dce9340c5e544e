import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { createDocumentValidator, SCHEMA_URL, type DocumentValidator } from '../../src/manifest/schema.ts';
import { describeSpecChanges } from '../../src/manifest/spec-diff.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';
import type { ContainerDoc } from '../../src/manifest/types.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const DIGEST = `sha256:${'a'.repeat(64)}`;
const HEADER = 'apiVersion: berth.dev/v1alpha1\nkind: Volume\nmetadata: {name: data}\n---\n';
const IMAGE = '---\napiVersion: berth.dev/v1alpha1\nkind: Image\nmetadata: {name: bb}\nspec: {ref: "127.0.0.1:5000/busybox:latest"}\n';

/** Loads one container named web from its spec lines (with a Volume `data` and an Image `bb` declared). */
function web(specLines: string[]): ContainerDoc {
  const text = `${HEADER}apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: web}\nspec:\n${specLines.map((l) => `  ${l}`).join('\n')}\n${IMAGE}`;
  const r = parseManifestSources([{ file: 'web.yaml', text }], validator);
  expect(r.problems).toEqual([]);
  return r.state!.containers[0]!;
}

const BASE = [
  'image: 127.0.0.1:5000/busybox',
  'command: [/bin/httpd]',
  'args: ["-f", "-p", "8080"]',
  'env: {A: "1", B: two}',
  'mounts:',
  '  - {type: volume, name: data, target: /data}',
  '  - {type: tmpfs, target: /tmp, size: 16Mi}',
  'resources: {memory: 64Mi, cpus: 0.5}',
];
const hashOf = (lines: string[], digest = DIGEST) => containerSpecHash(web(lines), digest);

describe('spec hash: changes that do not matter keep the hash', () => {
  const base = () => hashOf(BASE);
  const cases: Record<string, string[]> = {
    'keys in another order': [
      'resources: {cpus: 0.5, memory: 64Mi}',
      'env: {B: two, A: "1"}',
      'mounts:',
      '  - {target: /tmp, size: 16Mi, type: tmpfs}',
      '  - {name: data, type: volume, target: /data}',
      'args: ["-f", "-p", "8080"]',
      'command: [/bin/httpd]',
      'image: 127.0.0.1:5000/busybox',
    ],
    'defaults written out': [
      ...BASE,
      'restartPolicy: Always',
      'network: host',
      'readOnlyRootfs: false',
      'stopSignal: SIGTERM',
      'stopGracePeriod: 10s',
      'dependsOn: []',
    ].map((l) => (l.startsWith('  - {type: volume') ? '  - {type: volume, name: data, target: /data, readOnly: false}' : l)),
    'sizes and durations in other units': BASE.map((l) =>
      l.startsWith('resources') ? 'resources: {memory: 67108864, cpus: 0.5}' : l.includes('tmpfs') ? '  - {type: tmpfs, target: /tmp, size: "16777216"}' : l,
    ).concat(['stopGracePeriod: 10000ms', 'stopSignal: TERM']),
    'the image by Image name instead of by reference, or spelled out': BASE.map((l) => (l.startsWith('image:') ? 'image: bb' : l)),
    'the same reference written with its default tag': BASE.map((l) => (l.startsWith('image:') ? 'image: "127.0.0.1:5000/busybox:latest"' : l)),
    'env given as a number instead of a string': BASE.map((l) => (l.startsWith('env:') ? 'env: {A: 1, B: two}' : l)),
    'restartPolicy and dependsOn (berth decides those without recreating)': [...BASE, 'restartPolicy: OnFailure'],
  };
  for (const [what, lines] of Object.entries(cases)) {
    it(what, () => {
      expect(hashOf(lines)).toBe(base());
    });
  }
  it('is a sha256 digest', () => {
    expect(base()).toMatch(/^sha256:[a-f0-9]{64}$/);
  });
});

describe('spec hash: every meaningful change changes the hash, and the diff names it', () => {
  const cases: Record<string, [string[], string[]]> = {
    'an env value': [BASE.map((l) => (l.startsWith('env:') ? 'env: {A: "1", B: three}' : l)), ['env B changed']],
    'an env var added': [BASE.map((l) => (l.startsWith('env:') ? 'env: {A: "1", B: two, C: x}' : l)), ['env C added']],
    'an env var removed': [BASE.map((l) => (l.startsWith('env:') ? 'env: {A: "1"}' : l)), ['env B removed']],
    'the command': [BASE.map((l) => (l.startsWith('command:') ? 'command: [/bin/sh]' : l)), ['command changed']],
    'the args': [BASE.map((l) => (l.startsWith('args:') ? 'args: ["-f"]' : l)), ['args changed']],
    'the image reference': [
      BASE.map((l) => (l.startsWith('image:') ? 'image: 127.0.0.1:5000/busybox:1.36' : l)),
      ['image 127.0.0.1:5000/busybox:latest → 127.0.0.1:5000/busybox:1.36'],
    ],
    'a memory limit': [BASE.map((l) => (l.startsWith('resources') ? 'resources: {memory: 65Mi, cpus: 0.5}' : l)), ['memory limit changed']],
    'a tmpfs size': [BASE.map((l) => (l.includes('tmpfs') ? '  - {type: tmpfs, target: /tmp, size: 32Mi}' : l)), ['mount /tmp changed']],
    'a mount made read-only': [
      BASE.map((l) => (l.includes('type: volume') ? '  - {type: volume, name: data, target: /data, readOnly: true}' : l)),
      ['mount /data changed'],
    ],
    'a mount added': [BASE.flatMap((l) => (l.includes('tmpfs') ? [l, '  - {type: bind, source: /etc/ssl, target: /etc/ssl}'] : [l])), ['mount /etc/ssl added']],
    'the user': [[...BASE, 'user: "1000"'], ['user changed']],
    'the working dir': [[...BASE, 'workingDir: /www'], ['workingDir changed']],
    'the network': [[...BASE, 'network: none'], ['network changed']],
    'a read-only rootfs': [[...BASE, 'readOnlyRootfs: true'], ['readOnlyRootfs changed']],
    'the stop signal': [[...BASE, 'stopSignal: SIGINT'], ['stopSignal changed']],
    'the grace period': [[...BASE, 'stopGracePeriod: 11s'], ['stopGracePeriodMs changed']],
  };
  for (const [what, [lines, words]] of Object.entries(cases)) {
    it(what, () => {
      expect(hashOf(lines)).not.toBe(hashOf(BASE));
      expect(describeSpecChanges(normaliseContainerSpec(web(BASE)), normaliseContainerSpec(web(lines)))).toEqual(words);
    });
  }
  it('the image digest', () => {
    expect(hashOf(BASE, `sha256:${'b'.repeat(64)}`)).not.toBe(hashOf(BASE));
  });
  it('no words for specs that mean the same', () => {
    expect(describeSpecChanges(normaliseContainerSpec(web(BASE)), normaliseContainerSpec(web(BASE)))).toEqual([]);
  });
});

describe('the published schema', () => {
  it('is a valid draft-07 JSON Schema that ajv compiles strictly', async () => {
    const schema = JSON.parse(await readFile(SCHEMA_URL, 'utf8'));
    const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allowMatchingProperties: true, keywords: [] });
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('is what the shipped manifests point editors at', async () => {
    for (const f of ['manifests/demo.yaml', 'examples/kiosk/kiosk.yaml', 'examples/airgap/images.yaml']) {
      const text = await readFile(new URL(`../../${f}`, import.meta.url), 'utf8');
      const m = /# yaml-language-server: \$schema=(\S+)/.exec(text);
      expect(m, f).not.toBeNull();
      expect(new URL(m![1]!, new URL(`../../${f}`, import.meta.url)).href).toBe(SCHEMA_URL.href);
    }
  });
});
