/**
 * The rollout records (schema migration 2): generations that are progressing or rolled back and
 * remember what they changed, containers kept for a rollback, and settings. Real SQLite on disk,
 * including a database written by the previous schema version.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Metadata } from '../../src/metadata/metadata.ts';
import { MIGRATIONS } from '../../src/metadata/schema.ts';

let dir: string;
let dbPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-md-rollout-'));
  dbPath = join(dir, 'metadata.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const container = {
  name: 'web',
  specHash: 'sha256:' + '1'.repeat(64),
  spec: { image: 'busybox', env: { A: '1' } },
  image: 'docker.io/library/busybox:latest',
  imageDigest: 'sha256:' + 'a'.repeat(64),
  snapshotter: 'overlayfs',
  snapshotKey: 'container/web/abc',
  generation: 1,
};

describe('rollout records', () => {
  test('a database of schema 1 is migrated: generations keep ids and results, new ids continue after them', () => {
    Metadata.open(dbPath, { migrations: MIGRATIONS.slice(0, 1) }).close();
    // Rows as the previous berth wrote them (its own SQL: today's code writes columns it lacked).
    const old = new DatabaseSync(dbPath);
    const insert = old.prepare('INSERT INTO generations (revision, applied_at, desired, result, message) VALUES (?, ?, ?, ?, ?)');
    const g1 = { id: Number(insert.run('r1', 1000, '{"containers":[]}', 'applied', null).lastInsertRowid) };
    const g2 = { id: Number(insert.run(null, 2000, '{"containers":["x"]}', 'failed', 'boom').lastInsertRowid) };
    old.close();

    const md = Metadata.open(dbPath);
    expect(md.schemaVersion()).toBe(MIGRATIONS.length);
    expect(md.getGeneration(g1.id)).toMatchObject({ revision: 'r1', result: 'applied', changed: [] });
    expect(md.getGeneration(g2.id)).toMatchObject({ result: 'failed', message: 'boom', changed: [] });
    const g3 = md.addGeneration({ desired: {}, desiredHash: 'sha256:x' });
    expect(g3.id).toBeGreaterThan(g2.id);
    expect(g3.desiredHash).toBe('sha256:x');
    expect(md.checkIntegrity()).toEqual([]);
    md.close();
  });

  test('changed containers accumulate once each; progressing and rolledback are results', () => {
    const md = Metadata.open(dbPath);
    const g = md.addGeneration({ desired: {} });
    md.addChangedContainers(g.id, ['web', 'db']);
    expect(md.addChangedContainers(g.id, ['web']).changed).toEqual(['db', 'web']);
    const p = md.markProgressing(g.id, new Date(5000));
    expect(p.result).toBe('progressing');
    expect(p.progressingSince).toEqual(new Date(5000));
    expect(md.setGenerationResult(g.id, 'rolledback', 'web: exited with code 1').result).toBe('rolledback');
    expect(md.currentGeneration()).toBeUndefined();
    md.close();
  });

  test('a retired container keeps its record and the image record it ran, across reopening', () => {
    let md = Metadata.open(dbPath);
    md.putContainer(container);
    const rec = md.getContainer('web')!;
    const image = md.putImage({
      name: container.image,
      target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: container.imageDigest, size: 10 },
      manifestDigest: container.imageDigest,
      configDigest: 'sha256:' + 'c'.repeat(64),
      platform: 'linux/amd64',
      size: 10,
      labels: {},
    });
    md.putRetiredContainer({ record: rec, image, retiredBy: 2 });
    md.close();
    md = Metadata.open(dbPath);
    const kept = md.getRetiredContainer('web')!;
    expect(kept.record).toEqual(rec);
    expect(kept.image).toEqual(image);
    expect(kept.retiredBy).toBe(2);
    expect(md.listRetiredContainers().map((r) => r.record.name)).toEqual(['web']);
    expect(md.deleteRetiredContainer('web')).toBe(true);
    expect(md.getRetiredContainer('web')).toBeUndefined();
    md.close();
  });

  test('settings are set, replaced and deleted', () => {
    const md = Metadata.open(dbPath);
    expect(md.getSetting('rollout.hold')).toBeUndefined();
    md.setSetting('rollout.hold', '{"generation":1}');
    md.setSetting('rollout.hold', '{"generation":2}');
    expect(md.getSetting('rollout.hold')).toBe('{"generation":2}');
    md.deleteSetting('rollout.hold');
    expect(md.getSetting('rollout.hold')).toBeUndefined();
    md.close();
  });
});

describe('object status', () => {
  test('an unchanged status is not written again: updatedAt stays, and the database file does not grow its WAL', () => {
    let t = 1000;
    const md = Metadata.open(dbPath, { now: () => new Date(t) });
    md.setStatus({ kind: 'Container', name: 'web', state: 'Ready', reason: 'UpToDate', message: 'running' });
    const walSize = () => statSync(`${dbPath}-wal`).size;
    const before = walSize();
    t = 5000;
    for (let i = 0; i < 20; i++) md.setStatus({ kind: 'Container', name: 'web', state: 'Ready', reason: 'UpToDate', message: 'running' });
    expect(md.getStatus('Container', 'web')!.updatedAt).toEqual(new Date(1000));
    expect(walSize()).toBe(before);
    md.setStatus({ kind: 'Container', name: 'web', state: 'Reconciling', reason: 'Waiting', message: 'restart in 10s' });
    expect(md.getStatus('Container', 'web')!.updatedAt).toEqual(new Date(5000));
    expect(walSize()).toBeGreaterThan(before);
    md.close();
  });
});

describe('rolled-back generations', () => {
  test('are found by the hash of what they asked for, newest first; other results are not', () => {
    const md = Metadata.open(dbPath);
    const a = md.addGeneration({ desired: {}, desiredHash: 'sha256:a' });
    md.setGenerationResult(a.id, 'rolledback', 'first');
    md.addGeneration({ desired: {}, desiredHash: 'sha256:b', result: 'applied' });
    const c = md.addGeneration({ desired: {}, desiredHash: 'sha256:a' });
    md.setGenerationResult(c.id, 'rolledback', 'second');
    expect(md.rolledBackGeneration('sha256:a')).toMatchObject({ id: c.id, message: 'second' });
    expect(md.rolledBackGeneration('sha256:b')).toBeUndefined();
    expect(md.rolledBackGeneration('sha256:none')).toBeUndefined();
    md.close();
  });
});
