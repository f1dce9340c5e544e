/**
 * Whatever a Compose file holds, reading and loading it ends in documents or problems, never in a crash: the
 * mapping trusts only what the Compose schema promises (a long-form volume need not have a source,
 * a healthcheck test may be an empty list…). Random services over the keys berth maps, with values
 * of every shape, some of which the schema lets through.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCompose } from '../../src/compose/read.ts';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { ComposeDirs } from './helpers.ts';

const dirs = new ComposeDirs();
beforeAll(() => dirs.setUp());
afterAll(() => dirs.tearDown());

const word = fc.constantFrom(
  'a',
  'b',
  'host',
  'none',
  '/x',
  './y',
  'v:/data',
  '/dev/null',
  '1g',
  '10s',
  'CMD',
  'NONE',
  'CMD-SHELL',
  'always',
  'no',
  'A=1',
  '0',
  '-1',
  '',
  'on-failure:2',
  'service:a',
);
const words = fc.array(word, { maxLength: 3 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const record = (shape: Record<string, fc.Arbitrary<unknown>>) =>
  fc.record(Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, opt(v)])), { requiredKeys: [] });
const listOrDict = fc.oneof(words, fc.dictionary(word, fc.oneof(word, fc.integer(), fc.constant(null)), { maxKeys: 3 }));
const int = fc.integer({ min: -2, max: 4 });
/** Values of the shapes the Compose schema allows for each key (and a few it does not). */
const SHAPES: Record<string, fc.Arbitrary<unknown>> = {
  image: word,
  network_mode: fc.constantFrom('host', 'host', 'none', 'bridge', 'service:a'),
  restart: fc.constantFrom('no', 'always', 'on-failure', 'unless-stopped', 'on-failure:2', 'x'),
  user: word,
  working_dir: word,
  hostname: word,
  stop_signal: word,
  stop_grace_period: word,
  platform: word,
  pull_policy: word,
  container_name: word,
  command: fc.oneof(word, words, fc.constant(null)),
  entrypoint: fc.oneof(word, words),
  environment: listOrDict,
  labels: listOrDict,
  sysctls: listOrDict,
  extra_hosts: fc.oneof(words, fc.dictionary(word, fc.oneof(word, words), { maxKeys: 2 })),
  env_file: fc.oneof(
    word,
    fc.array(fc.oneof(word, record({ path: fc.constantFrom('v.env', 'gone.env'), required: fc.boolean(), format: word })), { maxLength: 2 }),
  ),
  depends_on: fc.oneof(
    words,
    fc.dictionary(fc.constantFrom('a', 'b', 'c'), record({ condition: word, required: fc.boolean(), restart: fc.boolean() }), { maxKeys: 2 }),
  ),
  healthcheck: record({ test: fc.oneof(word, words), interval: word, timeout: word, retries: int, start_period: word, disable: fc.boolean() }),
  volumes: fc.array(
    fc.oneof(
      word,
      record({
        type: fc.constantFrom('bind', 'volume', 'tmpfs', 'npipe'),
        source: word,
        target: word,
        read_only: fc.boolean(),
        tmpfs: record({ size: fc.oneof(word, int) }),
      }),
    ),
    { maxLength: 3 },
  ),
  tmpfs: fc.oneof(word, words),
  devices: fc.array(fc.oneof(word, record({ source: word, target: word, permissions: word })), { maxLength: 2 }),
  cap_add: words,
  cap_drop: words,
  group_add: words,
  dns: fc.oneof(word, words),
  profiles: words,
  privileged: fc.boolean(),
  init: fc.boolean(),
  read_only: fc.boolean(),
  ulimits: fc.dictionary(fc.constantFrom('nofile', 'core', 'bogus'), fc.oneof(int, record({ soft: int, hard: int })), { maxKeys: 2 }),
  shm_size: fc.oneof(word, int),
  mem_limit: fc.oneof(word, int),
  pids_limit: int,
  cpus: fc.oneof(word, int),
  deploy: record({
    replicas: int,
    mode: word,
    resources: record({ limits: record({ memory: word, cpus: fc.oneof(word, int), pids: int }), reservations: record({ memory: word }) }),
    restart_policy: record({ condition: word, max_attempts: int }),
  }),
};
const service = fc
  .shuffledSubarray(Object.keys(SHAPES), { minLength: 1, maxLength: 3 })
  .chain((keys) => fc.record(Object.fromEntries(keys.map((k) => [k, SHAPES[k]!]))))
  .map((svc) => ({ image: 'busybox:1.36', network_mode: 'host', ...svc }));

describe('reading any Compose file', () => {
  it('ends in documents or problems, never an exception', async () => {
    const dir = await dirs.dir({ 'v.env': 'A=1\n' });
    let converted = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom('a', 'b', 'v'), service, { minKeys: 1, maxKeys: 2 }), async (services) => {
        const text = stringify({ services, volumes: { v: {} } });
        const r = await readCompose(`${dir}/compose.yaml`, text, { env: {} });
        expect(r.documents.length > 0 || r.problems.length > 0).toBe(true);
        converted += r.documents.length > 0 ? 1 : 0;
        // And the loader's own checks on what it became.
        const loaded = parseManifestSources([{ file: `${dir}/compose.yaml`, text, compose: r }], dirs.validator);
        expect(loaded.state !== undefined || loaded.problems.length > 0).toBe(true);
      }),
      { numRuns: 600, seed: 12 },
    );
    // Enough of them get past the schema to exercise the mapping, not only the schema.
    expect(converted).toBeGreaterThan(100);
  }, 120_000);
});
