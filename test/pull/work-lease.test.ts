import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '../../src/metadata/metadata.ts';
import { WorkLease } from '../../src/images/work-lease.ts';

let tmp: string;
let md: Metadata;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-lease-'));
  md = Metadata.open(join(tmp, 'metadata.db'));
});
afterEach(async () => {
  md.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('work lease', () => {
  it('expires on its own, is renewed with its resources while work runs, and is released', async () => {
    const lease = new WorkLease(md, { kind: 'pull', ttlMs: 10_000, renewEveryMs: 40, labels: { 'berth/pull': 'x' } });
    const first = lease.id;
    const l0 = md.listLeases();
    expect(l0).toHaveLength(1);
    expect(l0[0]!.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 9_000);
    expect(l0[0]!.expiresAt!.getTime()).toBeLessThan(Date.now() + 11_000);
    lease.add({ type: 'content', key: 'sha256:' + 'a'.repeat(64) }, { type: 'ingest', key: 'layer-x' });
    lease.add({ type: 'content', key: 'sha256:' + 'a'.repeat(64) }); // idempotent
    await new Promise((r) => setTimeout(r, 130));
    expect(lease.id).not.toBe(first);
    const now = md.listLeases();
    expect(now.map((l) => l.id)).toEqual([lease.id]);
    expect(now[0]!.labels['berth/pull']).toBe('x');
    expect(now[0]!.resources.map((r) => `${r.type} ${r.key}`).sort()).toEqual([`content sha256:${'a'.repeat(64)}`, 'ingest layer-x']);
    lease.release();
    expect(md.listLeases()).toEqual([]);
  });
});
