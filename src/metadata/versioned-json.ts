/**
 * The documents metadata.db keeps as JSON, each with an explicit format version: a generation's
 * desired state (what the offline fallback and rollbacks apply again) and a container's
 * normalised spec (what plan diffs a recreate against). On disk:
 *
 *   {"format":"berth.desired-state","version":1,"value":{…}}
 *
 * Rows written before the envelope existed hold the bare value: they are version 0. Reading runs
 * the upgrades from the row's version to the current one, so a berth that changes a document's
 * shape adds a version and an upgrade here and still reads every older row the same way; a row
 * from a newer berth is refused (FailedPrecondition), never misread. Writing always writes the
 * current version.
 */
import { corrupt, failedPrecondition } from '../errors.ts';

export interface JsonFormat {
  /** Stored in the envelope, so a document is never read as another kind. */
  name: string;
  /** The version written now. */
  version: number;
  /** `upgrades[v]` turns a version-v value into a version v+1 value; there are `version` of them. */
  upgrades: readonly ((value: unknown) => unknown)[];
}

interface Envelope {
  format: string;
  version: number;
  value: unknown;
}

/** Version 1 only added the envelope: the value is as version 0 held it. */
const sameShape = (value: unknown) => value;

/** `DesiredState` (src/manifest/types.ts), with the reconciler's `imagePins`. */
export const DESIRED_STATE: JsonFormat = { name: 'berth.desired-state', version: 1, upgrades: [sameShape] };

/** `NormalisedContainerSpec` (src/manifest/spec-hash.ts). */
export const CONTAINER_SPEC: JsonFormat = { name: 'berth.container-spec', version: 1, upgrades: [sameShape] };

/** The envelope for `value` in the current version (for a document held inside another JSON row). */
export function wrap(format: JsonFormat, value: unknown): Envelope {
  return { format: format.name, version: format.version, value: value ?? null };
}

/** The current-version value of a stored document (an envelope, or a bare version-0 value); `where` names the row. */
export function unwrap(format: JsonFormat, stored: unknown, where: string): unknown {
  const envelope = isEnvelope(stored) ? stored : undefined;
  if (envelope && envelope.format !== format.name) throw corrupt(`${where}: holds a ${envelope.format} document, not a ${format.name}`);
  const version = envelope?.version ?? 0;
  if (!Number.isInteger(version) || version < 0) throw corrupt(`${where}: ${format.name} has an invalid version ${JSON.stringify(version)}`);
  if (version > format.version) {
    throw failedPrecondition(`${where}: ${format.name} version ${version} is newer than this berth understands (${format.version}); upgrade berth`);
  }
  let value = envelope ? envelope.value : stored;
  for (let v = version; v < format.version; v++) value = format.upgrades[v]!(value);
  return value;
}

/** The JSON text to store for `value`. */
export function encodeJson(format: JsonFormat, value: unknown): string {
  return JSON.stringify(wrap(format, value));
}

/** The current-version value of stored JSON text; Corrupt if it is not JSON. */
export function decodeJson(format: JsonFormat, text: string, where: string): unknown {
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (err) {
    throw corrupt(`${where}: not valid JSON`, { cause: err });
  }
  return unwrap(format, stored, where);
}

function isEnvelope(v: unknown): v is Envelope {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.format === 'string' && 'version' in o && 'value' in o && Object.keys(o).length === 3;
}
