/**
 * Reconcile turns without root: the real Reconciler (observe → plan → execute, the reconcile lock,
 * generations, status) on SQLite in memory and the in-memory fakes of test/fakes/, with an injected
 * clock. Each test drives a device through a few turns and checks what runs afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeWorld, container, testImage } from '../fakes/world.ts';

const APP = 'registry.test/app:1';
let w: FakeWorld;

beforeEach(async () => {
  w = await FakeWorld.create();
  w.registry.push(APP, await testImage('v1'));
});
afterEach(async () => w.close());

async function running(name: string): Promise<boolean> {
  return (await w.runtime.status(name)).state === 'running';
}

describe('a turn', () => {
  it('on an empty device pulls the image, unpacks it, creates and starts the container, and records the generation', async () => {
    await w.writeManifests([container('web', APP)]);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toEqual(['pull:ok', 'create:ok']);
    expect(r.converged).toBe(true);
    expect(await running('web')).toBe(true);
    const image = w.metadata.getImage(APP)!;
    expect(image.chainIds).toHaveLength(1);
    expect(w.snapshotter.keys()).toContain(image.chainIds![0]);
    expect(w.metadata.getContainer('web')).toMatchObject({ image: APP, imageDigest: image.manifestDigest });
    expect(r.generation?.result).toBe('applied');
    // Nothing left to do: the next turn changes nothing.
    expect(FakeWorld.kinds(await w.turn())).toEqual([]);
  });

  it('recreates a container whose spec changed on a new writable layer (an update is a rollout: the old one is kept until confirmed)', async () => {
    await w.writeManifests([container('web', APP, { env: { V: '1' } })]);
    await w.turn();
    const before = w.metadata.getContainer('web')!;
    await w.writeManifests([container('web', APP, { env: { V: '2' } })]);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toContain('recreate:ok');
    const after = w.metadata.getContainer('web')!;
    expect(after.specHash).not.toBe(before.specHash);
    expect(after.snapshotKey).not.toBe(before.snapshotKey);
    expect(await running('web')).toBe(true);
    expect(w.metadata.getRetiredContainer('web')?.record.snapshotKey).toBe(before.snapshotKey);
    expect(w.snapshotter.keys()).toContain(before.snapshotKey);
  });

  it('removes a container the manifests no longer name; once the generation is confirmed its record and writable layer go', async () => {
    await w.writeManifests([container('web', APP), container('job', APP)]);
    await w.turn();
    const key = w.metadata.getContainer('job')!.snapshotKey;
    await w.writeManifests([container('web', APP)]);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toEqual(expect.arrayContaining(['remove:ok', 'gc:ok']));
    expect(r.rollout?.state).toBe('confirmed'); // nothing new to prove
    expect(w.runtime.names()).toEqual(['web']);
    expect(w.metadata.getContainer('job')).toBeUndefined();
    expect(w.metadata.getRetiredContainer('job')).toBeUndefined();
    expect(w.snapshotter.keys()).not.toContain(key);
  });

  it('restarts an exited container by its policy once the back-off has passed, and records the streak', async () => {
    await w.writeManifests([container('web', APP)]);
    await w.turn();
    w.advance(1_000);
    w.runtime.exit('web', 1);
    const waiting = await w.turn();
    expect(waiting.steps).toEqual([expect.objectContaining({ kind: 'wait', until: w.t + 10_000 })]);
    expect(await running('web')).toBe(false);
    w.advance(10_000);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toEqual(['start:ok']);
    const st = await w.runtime.status('web');
    expect(st.state).toBe('running');
    expect(st.record).toMatchObject({ restartCount: 1, backoffStreak: 1 });
    // The second crash in a row waits twice as long.
    w.advance(1_000);
    w.runtime.exit('web', 1);
    expect((await w.turn()).steps).toEqual([expect.objectContaining({ kind: 'wait', until: w.t + 20_000 })]);
  });

  it('leaves a container with restartPolicy Never down after it exits', async () => {
    await w.writeManifests([container('once', APP, { restartPolicy: 'Never' })]);
    await w.turn();
    w.runtime.exit('once', 3);
    w.advance(3_600_000);
    expect((await w.turn()).steps).toEqual([]);
    expect((await w.runtime.status('once')).state).toBe('exited');
  });
});

describe('drift repair', () => {
  beforeEach(async () => {
    await w.writeManifests([container('web', APP)]);
    await w.turn();
  });

  it("creates again a container removed behind berth's back", async () => {
    w.runtime.forget('web');
    const r = await w.turn();
    expect(r.steps.map((s) => s.reason)).toEqual([expect.stringContaining('container missing')]);
    expect(FakeWorld.kinds(r)).toEqual(['create:ok']);
    expect(await running('web')).toBe(true);
  });

  it('unpacks again a layer whose directory was removed, from the content store, and remakes its container', async () => {
    const chainId = w.metadata.getImage(APP)!.chainIds![0]!;
    const fetchedBefore = w.registry.fetched.length;
    w.snapshotter.loseDirectory(chainId);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toEqual(expect.arrayContaining(['pull:ok']));
    expect(r.outcomes.find((o) => o.step.kind === 'pull')?.message).toContain('unpacked from the content store');
    expect(w.registry.fetched.length).toBe(fetchedBefore); // nothing downloaded
    expect(await w.snapshotter.onDisk(await w.snapshotter.stat(chainId))).toBe(true);
    // The container on the broken layer was removed by the repair and is made again (now or next turn).
    await w.turn();
    expect(await running('web')).toBe(true);
    expect(w.metadata.getContainer('web')!.labels['berth.dev/absent-reason']).toBeUndefined();
  });

  it('fetches again a blob deleted from the content store', async () => {
    const layer = (await testImage('v1')).layers![0]!.digest;
    await w.content.delete(layer);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toContain('pull:ok');
    expect(w.registry.fetched.filter((d) => d === layer)).toHaveLength(2);
    expect(w.content.has(layer)).toBe(true);
    expect(await running('web')).toBe(true);
  });

  it('waits, and blocks nothing else, while the registry of a missing blob is down', async () => {
    const layer = (await testImage('v1')).layers![0]!.digest;
    await w.content.delete(layer);
    w.registry.down = true;
    const r = await w.turn();
    expect(r.outcomes.find((o) => o.step.kind === 'pull')?.result).toBe('failed');
    expect(await running('web')).toBe(true); // the running container was never touched
    expect(w.runtime.started).toEqual(['web']);
  });
});

describe('rollouts', () => {
  let old: { snapshotKey: string; specHash: string };

  beforeEach(async () => {
    await w.writeManifests([container('web', APP, { env: { V: '1' }, update: { confirmAfter: '30s' } })]);
    expect((await w.turn()).generation?.result).toBe('applied');
    old = w.metadata.getContainer('web')!;
  });

  async function update(): Promise<void> {
    await w.writeManifests([container('web', APP, { env: { V: '2' }, update: { confirmAfter: '30s' } })]);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toContain('recreate:ok');
    expect(r.rollout?.state).toBe('progressing');
    expect(w.metadata.getRetiredContainer('web')?.record.snapshotKey).toBe(old.snapshotKey);
  }

  it('confirms the new container after confirmAfter, then forgets the old one and collects its writable layer', async () => {
    await update();
    w.advance(29_000);
    const watching = await w.turn();
    expect(watching.rollout).toMatchObject({ state: 'progressing', wakeAt: (await w.runtime.status('web')).startedAtMs! + 30_000 });
    expect(w.metadata.getRetiredContainer('web')).toBeDefined();
    w.advance(1_000);
    const r = await w.turn();
    expect(r.rollout?.state).toBe('confirmed');
    expect(w.metadata.latestGeneration()?.result).toBe('applied');
    expect(w.metadata.getRetiredContainer('web')).toBeUndefined();
    expect(w.snapshotter.keys()).not.toContain(old.snapshotKey);
    expect(await running('web')).toBe(true);
  });

  it('rolls back when the new container exits before it is confirmed, restoring the old one on its own writable layer', async () => {
    await update();
    w.advance(2_000);
    w.runtime.exit('web', 1);
    const r = await w.turn();
    expect(r.rollout).toMatchObject({ state: 'rolledback', message: expect.stringContaining('exited with code 1') });
    expect(FakeWorld.kinds(r)).toContain('restore:ok');
    expect(w.metadata.getContainer('web')).toMatchObject({ snapshotKey: old.snapshotKey, specHash: old.specHash });
    expect(w.metadata.getRetiredContainer('web')).toBeUndefined();
    expect(await running('web')).toBe(true);
    expect(w.metadata.latestGeneration()?.result).toBe('rolledback');
    // The rolled-back manifests are not tried again until they change.
    w.advance(60_000);
    expect((await w.turn()).steps).toEqual([]);
    expect(w.metadata.getContainer('web')?.snapshotKey).toBe(old.snapshotKey);
  });

  it('rolls back at once when the new container cannot be made, and never stops the old one', async () => {
    w.runtime.refuse = (req) => (req.spec.env.V === '2' ? new Error('command "/app" not found in image') : undefined);
    await w.writeManifests([container('web', APP, { env: { V: '2' }, update: { confirmAfter: '30s' } })]);
    const r = await w.turn();
    expect(FakeWorld.kinds(r)).toContain('recreate:failed');
    expect(r.rollout?.state).toBe('rolledback');
    expect(w.metadata.getContainer('web')?.snapshotKey).toBe(old.snapshotKey);
    expect(w.runtime.started).toEqual(['web']); // the old task never stopped
    expect(await running('web')).toBe(true);
  });
});
