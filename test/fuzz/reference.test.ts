/**
 * Fuzzing references and platforms (issue 8): whatever a manifest, the CLI or a registry's index
 * hands them, the parsers answer with a value or a BerthError, never anything else, and what they
 * return parses again to itself (normalising is idempotent).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.ts';
import { formatPlatform, parsePlatform } from '../../src/oci/platform.ts';
import { formatReference, parseReference } from '../../src/oci/reference.ts';
import { FUZZ_TIMEOUT, fuzzParams } from './fuzz-params.ts';

/** Counterexamples found by `npm run fuzz`, kept so they run first on every `npm test`. */
const REGRESSIONS: { references: [string][]; platforms: [string][] } = { references: [], platforms: [] };

/** Either a value or a BerthError; anything else thrown fails the property. */
function outcome<T>(fn: () => T): T | BerthError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BerthError) return err;
    throw err;
  }
}

/** Characters that matter to the grammar, plus some that must be refused. */
const odd = fc.constantFrom(':', '/', '@', '.', '_', '-', '__', '..', 'A', ' ', '\t', '\n', '\0', 'é', '%', '+', '~', 'sha256:', 'a'.repeat(300));
/** Inserts, deletes or replaces a piece of `s` at random places. */
const mutated = (base: fc.Arbitrary<string>) =>
  fc.tuple(base, fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.oneof(odd, fc.string({ maxLength: 3 }))), { maxLength: 4 })).map(([s, edits]) => {
    for (const [at, cut, piece] of edits) {
      const i = s.length ? at % (s.length + 1) : 0;
      s = s.slice(0, i) + piece + s.slice(i + cut);
    }
    return s;
  });

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const component = fc.oneof(fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*$/), fc.constantFrom('library', 'busybox', 'a', 'x__y', 'x--y'));
const wellFormedReference = fc
  .tuple(
    fc.constantFrom(
      '',
      'docker.io/',
      'index.docker.io/',
      'localhost/',
      'localhost:5000/',
      '127.0.0.1:5000/',
      'registry.example/',
      'Reg.Example:443/',
      '[::1]:5000/',
    ),
    fc.array(component, { minLength: 1, maxLength: 4 }),
    fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/)),
    fc.option(hex64),
  )
  .map(([domain, path, tag, digest]) => `${domain}${path.join('/')}${tag === null ? '' : `:${tag}`}${digest === null ? '' : `@sha256:${digest}`}`);

const platformPart = fc.constantFrom(
  'linux',
  'windows',
  'darwin',
  'amd64',
  'x86_64',
  'arm64',
  'aarch64',
  'arm',
  'armhf',
  'v7',
  'v8',
  '386',
  'riscv64',
  'LINUX',
  'ppc64le',
  's390x',
);
const wellFormedPlatform = fc.array(platformPart, { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));

/** Parsing `input` gives a value or an InvalidArgument BerthError; a value formats and parses to itself. */
function parsesToItself<T>(name: string, input: fc.Arbitrary<string>, parse: (s: string) => T, format: (v: T) => string, runs: number, examples: [string][]) {
  describe(`fuzz: ${name}`, () => {
    it(
      'parse a value or throw a BerthError; what they return parses to itself',
      () => {
        fc.assert(
          fc.property(input, (text) => {
            const v = outcome(() => parse(text));
            if (v instanceof BerthError) expect(v.kind).toBe('InvalidArgument');
            else expect(parse(format(v))).toEqual(v);
          }),
          fuzzParams(runs, examples),
        );
      },
      FUZZ_TIMEOUT,
    );
  });
}

parsesToItself(
  'references',
  fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), wellFormedReference, mutated(wellFormedReference)),
  parseReference,
  formatReference,
  3000,
  REGRESSIONS.references,
);
parsesToItself(
  'platforms',
  fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), wellFormedPlatform, mutated(wellFormedPlatform)),
  parsePlatform,
  formatPlatform,
  3000,
  REGRESSIONS.platforms,
);
