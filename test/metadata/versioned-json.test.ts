/**
 * Persisted documents keep their meaning across berth versions. The fixture
 * (fixtures/unversioned-rows.json) holds real rows as berth wrote them before the documents had a
 * version: the generation and container rows of metadata.db (schema 3), written by commit 6ab4cd6's
 * Metadata for examples/sensor-pipeline loaded by its loader, with one image pin.
 */
import { readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { specHash, type NormalisedContainerSpec } from '../../src/manifest/spec-hash.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { CONTAINER_SPEC, decodeJson, DESIRED_STATE, encodeJson, type JsonFormat } from '../../src/metadata/versioned-json.ts';
import { desiredHash } from '../../src/reconcile/reconciler.ts';

type Row = Record<string, string | number | null>;
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'unversioned-rows.json'), 'utf8')) as { generation: Row; container: Row };

let dir: string;
let dbPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-versioned-'));
  dbPath = join(dir, 'metadata.db');
  Metadata.open(dbPath).close();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Insert a row as stored, bypassing Metadata (as an older berth's writes would be found). */
function insertRaw(table: string, row: Row): void {
  const db = new DatabaseSync(dbPath);
  const cols = Object.keys(row);
  db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => row[c]!));
  db.close();
}

function rawColumn(sql: string): string {
  const db = new DatabaseSync(dbPath);
  const row = db.prepare(sql).get() as Record<string, string>;
  db.close();
  return Object.values(row)[0]!;
}

describe('documents written before they had a version', () => {
  it('a generation reads back as the desired state it was hashed from', () => {
    insertRaw('generations', fixture.generation);
    const md = Metadata.open(dbPath);
    const g = md.currentGeneration()!;
    expect(g.id).toBe(1);
    const desired = g.desired as DesiredState;
    expect(desired).toEqual(JSON.parse(fixture.generation.desired as string));
    expect(desired.containers.map((c) => c.metadata.name)).toEqual(['broker', 'collector', 'uploader']);
    expect(desiredHash(desired)).toBe(fixture.generation.desired_hash);
    md.close();
  });

  it('a container spec, live or retired, reads back as the spec its hash was made from', () => {
    insertRaw('containers', fixture.container);
    const md = Metadata.open(dbPath);
    const rec = md.getContainer('broker')!;
    expect(specHash(rec.spec as NormalisedContainerSpec, rec.imageDigest)).toBe(fixture.container.spec_hash);
    // A retired record held the whole container record, spec included, as bare JSON.
    const { spec_hash, image_digest, snapshot_key, created_at, updated_at, ...rest } = fixture.container;
    const oldRecord = {
      ...rest,
      specHash: spec_hash,
      imageDigest: image_digest,
      snapshotKey: snapshot_key,
      spec: JSON.parse(rest.spec as string),
      labels: {},
      createdAt: new Date(created_at as number),
      updatedAt: new Date(updated_at as number),
    };
    insertRaw('retired_containers', { name: 'broker', record: JSON.stringify(oldRecord), image: null, retired_by: 1, retired_at: 1 });
    const retired = md.getRetiredContainer('broker')!;
    expect(retired.record.spec).toEqual(rec.spec);
    expect(specHash(retired.record.spec as NormalisedContainerSpec, retired.record.imageDigest)).toBe(fixture.container.spec_hash);
    md.close();
  });
});

describe('documents written now', () => {
  it('are stored with their format and version, and read back the same', () => {
    const desired = JSON.parse(fixture.generation.desired as string) as DesiredState;
    const spec = JSON.parse(fixture.container.spec as string) as NormalisedContainerSpec;
    const md = Metadata.open(dbPath);
    md.addGeneration({ desired, result: 'applied' });
    md.putContainer({
      name: 'broker',
      specHash: 'sha256:x',
      spec,
      image: 'i',
      imageDigest: 'sha256:y',
      snapshotter: 'overlayfs',
      snapshotKey: 'k',
      generation: 1,
    });
    md.putRetiredContainer({ record: md.getContainer('broker')!, retiredBy: 1 });
    expect(JSON.parse(rawColumn('SELECT desired FROM generations'))).toMatchObject({ format: 'berth.desired-state', version: 1 });
    expect(JSON.parse(rawColumn('SELECT spec FROM containers'))).toMatchObject({ format: 'berth.container-spec', version: 1 });
    expect(JSON.parse(rawColumn('SELECT record FROM retired_containers')).spec).toMatchObject({ format: 'berth.container-spec', version: 1 });
    expect(md.currentGeneration()!.desired).toEqual(desired);
    expect(md.getContainer('broker')!.spec).toEqual(spec);
    expect(md.getRetiredContainer('broker')!.record.spec).toEqual(spec);
    md.close();
  });

  it('a document from a newer berth is refused, not misread; one of another kind is Corrupt', () => {
    insertRaw('generations', { ...fixture.generation, desired: JSON.stringify({ format: 'berth.desired-state', version: 99, value: {} }) });
    const md = Metadata.open(dbPath);
    expect(() => md.currentGeneration()).toThrow(expect.objectContaining({ kind: 'FailedPrecondition', message: expect.stringContaining('generation 1') }));
    md.close();
    expect(() => decodeJson(DESIRED_STATE, encodeJson(CONTAINER_SPEC, {}), 'row')).toThrow(expect.objectContaining({ kind: 'Corrupt' }));
    expect(() => decodeJson(DESIRED_STATE, '{"containers": [', 'row')).toThrow(expect.objectContaining({ kind: 'Corrupt' }));
  });

  it('runs the upgrades from the stored version to the current one, in order', () => {
    const v3: JsonFormat = {
      name: 'test.doc',
      version: 3,
      upgrades: [(v) => ({ a: v }), (v) => ({ ...(v as object), b: 2 }), (v) => ({ ...(v as object), c: 3 })],
    };
    expect(decodeJson(v3, '1', 'row')).toEqual({ a: 1, b: 2, c: 3 });
    expect(decodeJson(v3, JSON.stringify({ format: 'test.doc', version: 2, value: { a: 0, b: 0 } }), 'row')).toEqual({ a: 0, b: 0, c: 3 });
    expect(decodeJson(v3, encodeJson(v3, { kept: true }), 'row')).toEqual({ kept: true });
  });
});
