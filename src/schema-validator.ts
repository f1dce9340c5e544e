/**
 * JSON Schema validators without Ajv at run time. Ajv compiles each schema into JavaScript at build
 * time (`scripts/generate-validators.ts` writes `*.validator.generated.ts` beside its user), so the
 * daemon loads neither Ajv (about 10 MiB resident) nor spends the compile (0.4 s for the manifest
 * schema, 0.5 s for Compose's). The generated module carries a hash of what it was made from (the
 * schema and the Ajv options); when they differ, because a schema was edited and the generator not
 * run yet, Ajv compiles the schema here instead, so an edited tree never validates against an old
 * schema. `test/schema-validators.test.ts` fails while any generated file is stale.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ErrorObject, Options } from 'ajv';

export type SchemaValidate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** How to compile one schema: the same for the generator and for the fallback. */
export interface ValidatorSpec {
  /** JSON Schema draft: Ajv's default class (draft-07) or Ajv2020. */
  draft: '07' | '2020-12';
  options: Options;
  /** Custom formats, as regular expressions (they are written into the generated code). */
  formats?: Record<string, RegExp>;
}

/** What a generated module exports. */
export interface GeneratedValidator {
  sourceHash: string;
  validate: SchemaValidate;
}

/** The hash of a schema and its spec: a generated module made from other inputs is not used. */
export function validatorSourceHash(schema: object, spec: ValidatorSpec): string {
  const formats = Object.fromEntries(Object.entries(spec.formats ?? {}).map(([k, re]) => [k, String(re)]));
  return createHash('sha256')
    .update(JSON.stringify({ schema, draft: spec.draft, options: spec.options, formats }))
    .digest('hex');
}

/** The generated validator when it was made from `schema` and `spec`, else one Ajv compiles now. */
export function chooseValidator(schema: object, spec: ValidatorSpec, generated: GeneratedValidator): SchemaValidate {
  if (generated.sourceHash === validatorSourceHash(schema, spec)) return generated.validate;
  return newAjv(spec, {}).compile(schema) as SchemaValidate;
}

/**
 * An Ajv instance for `spec` (`extra` adds options, e.g. the generator's `code`). Loaded with
 * require, and only here: importing this module does not load Ajv.
 */
export function newAjv(spec: ValidatorSpec, extra: Options): import('ajv').Ajv {
  const require = createRequire(import.meta.url);
  const Ajv = (require(spec.draft === '2020-12' ? 'ajv/dist/2020.js' : 'ajv') as { default: typeof import('ajv').Ajv }).default;
  const ajv = new Ajv({ ...spec.options, ...extra });
  for (const [name, re] of Object.entries(spec.formats ?? {})) ajv.addFormat(name, re);
  return ajv;
}
