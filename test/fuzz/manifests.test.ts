/**
 * Fuzzing the manifest loader (issue 8): random documents and mutations of the shipped manifests.
 * Whatever the YAML, `parseManifestSources` returns either a state or problems, each problem at a
 * place inside the files it was given (file, and a line and column within the text), and never
 * throws. Time is bounded elsewhere (test/manifest/limits.test.ts counts the work).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseManifestSources, type ManifestSource } from '../../src/manifest/load.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { FUZZ_TIMEOUT, fuzzParams } from './fuzz-params.ts';

/** Counterexamples found by `npm run fuzz`, kept so they run first on every `npm test`. */
const REGRESSIONS: [ManifestSource[]][] = [];

const REPO = join(import.meta.dirname, '..', '..');
/** Every shipped manifest, as the seeds that mutations start from. */
const SHIPPED = ['manifests', 'examples/kiosk', 'examples/airgap', 'examples/sensor-pipeline'].flatMap((dir) =>
  readdirSync(join(REPO, dir))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => readFileSync(join(REPO, dir, f), 'utf8')),
);

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

/** Pieces that mean something to YAML or to the schema. */
const piece = fc.constantFrom(
  ':',
  ': ',
  '- ',
  '\n',
  '  ',
  '\t',
  '&a ',
  '*a',
  '<<: *a\n',
  '!!binary ',
  '!!map ',
  '!tag ',
  '{',
  '}',
  '[',
  ']',
  ',',
  '"',
  "'",
  '#',
  '---\n',
  '...\n',
  '? ',
  '|',
  '>-',
  '%YAML 1.2\n',
  '\0',
  '\uFEFF',
  '~',
  'null',
  '1e999',
  '0x1F',
  '-0',
  '.nan',
  'env:\n',
  'kind: Container\n',
  'kind: Image\n',
  'dependsOn: [web, web]\n',
  'image: busybox\n',
  'name: web\n',
  'mounts:\n  - {type: volume, name: nope, target: /x}\n',
  'metadata: {name: web}\n',
  '\u2028',
  'é',
  'a'.repeat(200),
  '[[[[[[[[[[',
  '{a: {a: {a: {a: ',
);

const mutation = fc.tuple(fc.nat(), fc.nat(40), fc.oneof(piece, fc.string({ maxLength: 8 })));
const mutatedShipped = fc.tuple(fc.constantFrom(...SHIPPED), fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([text, edits]) => {
  for (const [at, cut, p] of edits) {
    const i = at % (text.length + 1);
    text = text.slice(0, i) + p + text.slice(i + (cut % 4 === 0 ? cut : 0));
  }
  return text;
});

/** Documents of the right shape with random insides, written by the yaml package. */
const randomDocument = fc
  .record(
    {
      apiVersion: fc.oneof(fc.constant('berth.dev/v1alpha1'), fc.string()),
      kind: fc.constantFrom('Container', 'Image', 'Volume', 'Pod', ''),
      metadata: fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom('web', 'db', 'busybox'), fc.string()) }), fc.anything({ maxDepth: 2, maxKeys: 4 })),
      spec: fc.oneof(
        fc.record(
          {
            image: fc.oneof(fc.constantFrom('busybox', 'busybox:1', 'db', 'Bad Ref'), fc.anything({ maxDepth: 2, maxKeys: 4 })),
            ref: fc.oneof(fc.constantFrom('busybox:1', 'localhost:5000/x@sha256:' + '0'.repeat(64)), fc.string()),
            env: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.anything({ maxDepth: 2, maxKeys: 4 }))),
            dependsOn: fc.array(fc.constantFrom('web', 'db', 'x')),
            mounts: fc.array(
              fc.record(
                {
                  type: fc.constantFrom('volume', 'bind', 'tmpfs', 'x'),
                  name: fc.string(),
                  target: fc.constantFrom('/a', '/b', 'rel'),
                  size: fc.anything({ maxDepth: 2, maxKeys: 4 }),
                },
                { requiredKeys: [] },
              ),
            ),
            resources: fc.record(
              { memory: fc.oneof(fc.string(), fc.integer()), cpus: fc.anything({ maxDepth: 2, maxKeys: 4 }), pids: fc.integer() },
              { requiredKeys: [] },
            ),
            stopGracePeriod: fc.oneof(fc.string(), fc.integer()),
            platform: fc.string(),
          },
          { requiredKeys: [] },
        ),
        fc.anything({ maxDepth: 2, maxKeys: 4 }),
      ),
    },
    { requiredKeys: ['apiVersion', 'kind'] },
  )
  .map((doc) => stringify(doc));

const file = fc.oneof(
  mutatedShipped,
  fc.array(randomDocument, { minLength: 1, maxLength: 4 }).map((d) => d.join('---\n')),
  fc.string({ unit: 'binary', maxLength: 200 }),
);
const sourceSet = fc.array(file, { minLength: 1, maxLength: 3 }).map((texts) => texts.map((text, i): ManifestSource => ({ file: `m/${i}.yaml`, text })));

describe('fuzz: manifests', () => {
  it(
    'yield a state or problems placed inside the files, and never throw',
    () => {
      fc.assert(
        fc.property(sourceSet, (sources) => {
          const result = parseManifestSources(sources, validator);
          expect(result.state === undefined).toBe(result.problems.length > 0);
          for (const p of result.problems) {
            const source = sources.find((s) => s.file === p.place.file);
            expect(source, `a problem in a file that was not given: ${JSON.stringify(p)}`).toBeDefined();
            expect(p.message.length).toBeGreaterThan(0);
            if (p.place.line === undefined) continue;
            const lines = source!.text.split(/\r\n|\r|\n/).length;
            expect(p.place.line).toBeGreaterThanOrEqual(1);
            expect(p.place.line).toBeLessThanOrEqual(lines);
            expect(p.place.col).toBeGreaterThanOrEqual(1);
          }
        }),
        fuzzParams(200, REGRESSIONS),
      );
    },
    FUZZ_TIMEOUT,
  );
});
