/**
 * The JSON Schema validators Ajv generates at build time (src/schema-validator.ts): fresh, the same
 * findings as Ajv compiling the schema, never used for a schema edited since, and Ajv itself not
 * loaded at run time.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { staleValidators } from '../../scripts/generate-validators.ts';
import { packagesLoadedBy } from '../helpers/loaded-modules.ts';
import { COMPOSE_SCHEMA_URL, COMPOSE_VALIDATOR } from '../../src/compose/schema.ts';
import { CONFIG_VALIDATOR, SCHEMA as CONFIG_SCHEMA } from '../../src/config/config.ts';
import * as generatedConfig from '../../src/config/config-validator.generated.ts';
import * as generatedCompose from '../../src/compose/compose-validator.generated.ts';
import * as generatedManifest from '../../src/manifest/manifest-validator.generated.ts';
import { MANIFEST_VALIDATOR, SCHEMA_URL } from '../../src/manifest/schema.ts';
import { chooseValidator, newAjv, type SchemaValidate, type ValidatorSpec } from '../../src/schema-validator.ts';

const readJson = async (url: URL) => JSON.parse(await readFile(url, 'utf8'));
const top = new URL('../../', import.meta.url);

/** What a validator says about a value: its verdict and its errors, as the callers read them. */
function verdict(validate: SchemaValidate, value: unknown) {
  const ok = validate(value);
  return { ok, errors: JSON.parse(JSON.stringify(validate.errors ?? null)) };
}

describe('generated schema validators', () => {
  it('are fresh: made from the schemas and Ajv options as they are now (else run scripts/generate-validators.ts)', async () => {
    expect((await staleValidators()).map((s) => s.path)).toEqual([]);
  });

  it('give the same verdicts and errors as Ajv compiling the schema', async () => {
    const demo = parseAllDocuments(await readFile(new URL('manifests/demo.yaml', top), 'utf8')).map((d) => d.toJS());
    const bad = [
      {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Container',
        metadata: { name: 'web' },
        spec: { image: 1, restartPolicy: 'Sometimes', mounts: [{ type: 'bind' }], bogus: true },
      },
      { apiVersion: 'berth.dev/v1alpha1', kind: 'Image', metadata: {}, spec: { ref: 'x', pullPolicy: 'Allways' } },
      { kind: 'Volume' },
    ];
    const cases: Array<[ValidatorSpec, object, SchemaValidate, unknown[]]> = [
      [MANIFEST_VALIDATOR, await readJson(SCHEMA_URL), generatedManifest.validate, [...demo, ...bad]],
      [
        CONFIG_VALIDATOR,
        CONFIG_SCHEMA,
        generatedConfig.validate,
        [{}, { root: '/x', pull: { concurrency: 4 } }, { pull: { concurrency: 0 } }, { nope: 1 }, { registry: { hosts: { h: { mirrors: 'x' } } } }],
      ],
      [
        COMPOSE_VALIDATOR,
        await readJson(COMPOSE_SCHEMA_URL),
        generatedCompose.validate,
        [
          { services: { web: { image: 'busybox', ports: ['80:80'] } } },
          { services: { web: { image: 2, bogus: 1, healthcheck: { interval: 5 } } } },
          { services: [] },
        ],
      ],
    ];
    for (const [spec, schema, generated, values] of cases) {
      const compiled = newAjv(spec, {}).compile(schema) as SchemaValidate;
      for (const v of values) expect(verdict(generated, v)).toEqual(verdict(compiled, v));
    }
    // The cases do reach errors, on both sides.
    expect(verdict(generatedManifest.validate, bad[0]).errors.length).toBeGreaterThan(3);
  });

  it('are not used for a schema edited since they were made: Ajv compiles the edited one', async () => {
    const schema = await readJson(SCHEMA_URL);
    const volume = { apiVersion: 'berth.dev/v1alpha1', kind: 'Volume', metadata: { name: 'data' } };
    expect(chooseValidator(schema, MANIFEST_VALIDATOR, generatedManifest)(volume)).toBe(true);
    schema.properties.kind = { const: 'Container' };
    expect(generatedManifest.validate(volume)).toBe(true);
    expect(chooseValidator(schema, MANIFEST_VALIDATOR, generatedManifest)(volume)).toBe(false);
    // Other Ajv options are another source too.
    const config = chooseValidator(CONFIG_SCHEMA, { ...CONFIG_VALIDATOR, options: { ...CONFIG_VALIDATOR.options, allErrors: true } }, generatedConfig);
    expect(config).not.toBe(generatedConfig.validate);
  });

  it('leave Ajv unloaded: loading the config and validating manifests and Compose files loads only its small run-time helpers', async () => {
    const loaded = await packagesLoadedBy(`
      const { defaultConfig } = await import('./src/config/config.ts');
      const { createDocumentValidator } = await import('./src/manifest/schema.ts');
      const { composeValidator } = await import('./src/compose/schema.ts');
      defaultConfig({ pull: { concurrency: 2 } });
      (await createDocumentValidator())({ kind: 'Volume' });
      (await composeValidator())({ services: { web: { image: 1 } } });`);
    const ajvFiles = loaded.filter((u) => u.includes('/node_modules/ajv/'));
    expect(ajvFiles.filter((u) => !u.includes('/node_modules/ajv/dist/runtime/'))).toEqual([]);
  });
});
