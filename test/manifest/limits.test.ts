/**
 * Issue 8, item 9: manifests are bounded (file size, total size, document count) and validated in
 * linear time. A 22 MB file once ran `berth validate` for over ten minutes; 20,000 env entries took
 * 4 s, because yaml's duplicate-key check and its path lookups (used to place each problem) scan a
 * map's items once per key. Linearity is asserted by counting work, never by timing: yaml's
 * internal `isScalar` is called once per key comparison, so its call count grows with the square
 * of a map's size when a scan per key is back.
 */
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkManifests, DEFAULT_MANIFEST_LIMITS, parseManifestSources } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';

let base: string;
let validator: DocumentValidator;
let n = 0;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'berth-manifest-limits-'));
  validator = await createDocumentValidator();
});
afterAll(() => rm(base, { recursive: true, force: true }));

async function setOf(files: Record<string, string>): Promise<string> {
  const dir = join(base, `set-${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** One Container whose env has `entries` keys, each valued by `value(i)` (YAML text). */
function envManifest(entries: number, value: (i: number) => string = (i) => `v${i}`, name = 'web'): string {
  const lines = [`apiVersion: berth.dev/v1alpha1`, `kind: Container`, `metadata:`, `  name: ${name}`, `spec:`, `  image: busybox:1`, `  env:`];
  for (let i = 0; i < entries; i++) lines.push(`    K${i}: ${value(i)}`);
  return lines.join('\n') + '\n';
}

describe('manifest size limits', () => {
  it('validates 20,000 env entries', async () => {
    const dir = await setOf({ 'a.yaml': envManifest(20_000) });
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.problems).toEqual([]);
    expect(Object.keys(r.state!.containers[0]!.spec.env)).toHaveLength(20_000);
  });

  it('validates a file just under the per-file limit', async () => {
    let text = envManifest(70_000);
    text += '# ' + 'x'.repeat(DEFAULT_MANIFEST_LIMITS.fileBytes - Buffer.byteLength(text) - 3) + '\n';
    expect(Buffer.byteLength(text)).toBe(DEFAULT_MANIFEST_LIMITS.fileBytes);
    const dir = await setOf({ 'big.yaml': text });
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.problems).toEqual([]);
    expect(r.state!.containers).toHaveLength(1);
  });

  it('refuses a file over the limit, naming it, without parsing it', async () => {
    const text = envManifest(10) + '#' + 'x'.repeat(DEFAULT_MANIFEST_LIMITS.fileBytes) + '\n';
    const dir = await setOf({ 'ok.yaml': envManifest(1, undefined, 'other'), 'huge.yaml': text });
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.state).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      `${dir}/huge.yaml: file too big: more than 1.5 MiB, the limit for one manifest file; split it into smaller files`,
    ]);
  });

  it('refuses a set over the total limit at the file that crosses it', async () => {
    const dir = await setOf({
      'a.yaml': envManifest(200, undefined, 'a'),
      'b.yaml': envManifest(200, undefined, 'b'),
      'c.yaml': envManifest(200, undefined, 'c'),
    });
    const r = await checkManifests(dir, { validator, revision: false, limits: { totalBytes: Buffer.byteLength(envManifest(200, undefined, 'a')) * 2 + 10 } });
    expect(r.problems.map(formatProblem)).toEqual([
      expect.stringMatching(new RegExp(`^${dir}/c\\.yaml: the manifests are too big: more than .* in all, reached at this file$`)),
    ]);
  });

  it('refuses more files than the limit, naming the directory', async () => {
    const dir = await setOf({ 'a.yaml': envManifest(1, undefined, 'a'), 'b.yaml': envManifest(1, undefined, 'b'), 'c.yaml': envManifest(1, undefined, 'c') });
    const r = await checkManifests(dir, { validator, revision: false, limits: { files: 2 } });
    expect(r.problems.map(formatProblem)).toEqual([`${dir}: too many manifest files: 3, the limit is 2`]);
  });

  it('refuses a named file that is not a regular file (a link to /dev/zero never ends)', async () => {
    const dir = await setOf({});
    await symlink('/dev/zero', join(dir, 'zero.yaml'));
    const r = await checkManifests(join(dir, 'zero.yaml'), { validator, revision: false });
    expect(r.problems.map(formatProblem)).toEqual([`${dir}/zero.yaml: cannot read: not a regular file`]);
  });

  it('refuses more documents than the limit, at the first one over it', async () => {
    const doc = (i: number) => `apiVersion: berth.dev/v1alpha1\nkind: Volume\nmetadata: {name: v${i}}\n`;
    const text = Array.from({ length: 12 }, (_, i) => doc(i)).join('---\n');
    const dir = await setOf({ 'v.yaml': text });
    const r = await checkManifests(dir, { validator, revision: false, limits: { documents: 10 } });
    // Document 11 starts at its `---` on line 40 (4 lines per document).
    expect(r.problems.map(formatProblem)).toEqual([`${dir}/v.yaml:40:1: too many documents: the limit is 10 in all the manifests`]);
    const empty = await setOf({ 'e.yaml': '---\n'.repeat(100_000) });
    const many = await checkManifests(empty, { validator, revision: false });
    expect(many.problems.map((p) => p.message)).toEqual([`too many documents: the limit is ${DEFAULT_MANIFEST_LIMITS.documents} in all the manifests`]);
  });

  it('still reports a duplicate key, in block and flow maps, with both places', async () => {
    const text = envManifest(3, (i) => `v${i}`) + '    K1: again\n  labels: {a: 1, a: 2}\n';
    const r = parseManifestSources([{ file: 'd.yaml', text }], validator);
    expect(r.problems.map(formatProblem)).toEqual([
      'd.yaml:11:5: YAML: Map keys must be unique ("K1" is already at line 9)',
      'd.yaml:12:18: YAML: Map keys must be unique ("a" is already at line 12)',
    ]);
  });
});

describe('validation is linear', () => {
  // yaml is CommonJS and calls `identity.isScalar(...)` through the module object, so counting
  // calls there counts its key comparisons and lookups.
  const identity = createRequire(import.meta.url)(join(dirname(createRequire(import.meta.url).resolve('yaml')), 'nodes/identity.js'));

  function isScalarCalls(text: string): { calls: number; problems: number } {
    const original = identity.isScalar;
    let calls = 0;
    identity.isScalar = (node: unknown) => {
      calls++;
      return original(node);
    };
    try {
      const r = parseManifestSources([{ file: 'w.yaml', text }], validator);
      return { calls, problems: r.problems.length };
    } finally {
      identity.isScalar = original;
    }
  }

  it('checks duplicate keys with work proportional to the entries', () => {
    const small = isScalarCalls(envManifest(2_000));
    const large = isScalarCalls(envManifest(8_000));
    expect(small.problems).toBe(0);
    expect(small.calls).toBeGreaterThan(0);
    // Four times the entries: four times the work when linear, sixteen when quadratic.
    expect(large.calls / small.calls).toBeLessThan(5);
  });

  it('places one problem per entry with work proportional to the entries', () => {
    const small = isScalarCalls(envManifest(2_000, () => '[not, a, string]'));
    const large = isScalarCalls(envManifest(8_000, () => '[not, a, string]'));
    expect(small.problems).toBe(2_000);
    expect(large.problems).toBe(8_000);
    expect(large.calls / small.calls).toBeLessThan(5);
  });
});
