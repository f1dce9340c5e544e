/**
 * Interpolation as in Compose: the operators, nesting, `$$`, what is left alone, errors; values
 * only (never keys); the environment over `.env`; strings cast where Compose wants a boolean or a
 * number; problems and unset variables at their place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interpolate } from '../../src/compose/interpolate.ts';
import { isKind } from '../../src/errors.ts';
import { ComposeDirs } from './helpers.ts';

const ENV: Record<string, string> = { SET: 'value', EMPTY: '', PORT: '8080', NAME: 'SET' };
const lookup = (n: string) => ENV[n];

const TABLE: Array<[string, string, string[]?]> = [
  ['plain text', 'plain text'],
  ['$SET', 'value'],
  ['${SET}', 'value'],
  ['a${SET}b', 'avalueb'],
  ['$SET-x', 'value-x'],
  ['${UNSET}', '', ['UNSET']],
  ['$UNSET', '', ['UNSET']],
  ['${UNSET:-default}', 'default'],
  ['${UNSET-default}', 'default'],
  ['${EMPTY:-default}', 'default'],
  ['${EMPTY-default}', ''],
  ['${SET:-default}', 'value'],
  ['${SET:+alt}', 'alt'],
  ['${EMPTY:+alt}', ''],
  ['${EMPTY+alt}', 'alt'],
  ['${UNSET+alt}', ''],
  ['${UNSET:-${SET}}', 'value'],
  ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep'],
  ['${UNSET:-$PORT}', '8080'],
  ['${UNSET:-a b}', 'a b'],
  ['${SET?must be set}', 'value'],
  ['${EMPTY?must be set}', ''],
  ['$$', '$'],
  ['$$SET', '$SET'],
  ['$${SET}', '${SET}'],
  ['cost: 5$', 'cost: 5$'],
  ['$1 and $ alone', '$1 and $ alone'],
  ['http://$SET:${PORT}/', 'http://value:8080/'],
];

describe('interpolate()', () => {
  for (const [template, value, unset = []] of TABLE) {
    it(`${template} → ${JSON.stringify(value)}`, () => {
      expect(interpolate(template, lookup)).toEqual({ value, unset });
    });
  }

  const ERRORS: Array<[string, RegExp]> = [
    ['${UNSET:?set it first}', /required variable UNSET is not set: set it first/],
    ['${EMPTY:?}', /required variable EMPTY is empty/],
    ['${UNSET?}', /required variable UNSET is not set/],
    ['${}', /invalid interpolation/],
    ['${1X}', /invalid interpolation/],
    ['${SET/a/b}', /invalid interpolation/],
    ['${SET', /without a closing/],
  ];
  for (const [template, message] of ERRORS) {
    it(`${template} is an error`, () => {
      let caught: unknown;
      try {
        interpolate(template, lookup);
      } catch (err) {
        caught = err;
      }
      expect(isKind(caught, 'InvalidArgument')).toBe(true);
      expect((caught as Error).message).toMatch(message);
    });
  }
});

const dirs = new ComposeDirs();
beforeAll(() => dirs.setUp());
afterAll(() => dirs.tearDown());

describe('interpolation of a Compose file', () => {
  it('reads the environment first, then .env beside the file; values only, never keys', async () => {
    const text = `services:
  app:
    image: "busybox:\${TAG:-1.36}"
    network_mode: \${MODE}
    environment:
      FROM_ENV: \${FROM_ENV}
      FROM_DOTENV: \${FROM_DOTENV}
      BOTH: \${BOTH}
      \${NOT_A_KEY}: literal
      ESCAPED: $$HOME
    labels: ["\${LABEL_KEY}=x"]
`;
    const dotenv = 'FROM_DOTENV=dotenv\nBOTH=from-dotenv\nMODE=host\nLABEL_KEY="com.example.k"\n';
    const { result, problems } = await dirs.read({ 'compose.yaml': text, '.env': dotenv }, { FROM_ENV: 'env', BOTH: 'from-env' });
    expect(problems).toEqual([]);
    const images = result.drafts.filter((d) => d.value.kind === 'Image').map((d) => d.value.spec.ref);
    expect(images).toEqual(['busybox:1.36']);
    const spec = result.drafts.find((d) => d.value.kind === 'Container')!.value.spec;
    expect(spec.network).toBe('host');
    expect(spec.env).toEqual({ FROM_ENV: 'env', FROM_DOTENV: 'dotenv', BOTH: 'from-env', '${NOT_A_KEY}': 'literal', ESCAPED: '$HOME' });
    expect(spec.labels).toEqual({ 'com.example.k': 'x' });
  });

  it('casts strings where Compose wants a boolean or a number, after interpolation', async () => {
    const text =
      'services:\n  app:\n    image: busybox:1.36\n    network_mode: host\n    privileged: ${PRIV:-false}\n    init: "${INIT}"\n    pids_limit: ${PIDS:-64}\n    cpus: ${CPUS}\n    healthcheck: {test: [CMD, "true"], retries: "${RETRIES:-2}"}\n';
    const { result, problems } = await dirs.read({ 'compose.yaml': text }, { INIT: 'yes', CPUS: '1.5' });
    expect(problems).toEqual([]);
    const spec = result.drafts.find((d) => d.value.kind === 'Container')!.value.spec;
    expect(spec.privileged).toBeUndefined();
    expect(spec.init).toBe(true);
    expect(spec.resources).toEqual({ pids: 64, cpus: 1.5 });
    expect(spec.healthcheck.retries).toBe(2);
  });

  it('a missing required variable, a bad template and a bad cast are problems at their value; an unset variable is a note', async () => {
    const text =
      'services:\n  app:\n    image: busybox:1.36\n    network_mode: host\n    user: ${APP_USER:?the app user}\n    working_dir: ${WORK_DIR:-/srv\n    privileged: ${PRIV:-maybe}\n    hostname: ${HOST_NAME}\n';
    const { problems, notes } = await dirs.read({ 'compose.yaml': text });
    expect(problems).toEqual([
      'compose.yaml:5:11: required variable APP_USER is not set: the app user',
      expect.stringMatching(/^compose\.yaml:6:18: invalid interpolation .*without a closing/),
      'compose.yaml:7:17: "maybe" is not a boolean (true or false)',
    ]);
    expect(notes).toEqual(['compose.yaml:8:15: variable HOST_NAME is not set: an empty string is used']);
  });
});
