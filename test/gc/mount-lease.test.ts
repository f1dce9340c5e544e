/**
 * A `berth mount` view is held by a lease until `berth unmount`: nothing else refers to the view's
 * snapshot, so without it `berth gc` removed the directory under the mount.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mountKey } from '../../src/cli/mount.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { unmount } from '../../src/snapshots/mount.ts';
import { DEMO_REF, E2eRoot, imageDoc, requireE2e } from '../helpers/e2e.ts';

requireE2e();

let e: E2eRoot;
beforeEach(async () => {
  e = await E2eRoot.create('mount-lease');
  // An apply imports the demo image from the import directory and unpacks it.
  await e.importDemo();
  await e.writeManifests({ 'image.yaml': [imageDoc('demo', DEMO_REF)] });
  const r = await e.berth('apply', '-f', e.manifests);
  expect(r.code, r.stdout + r.stderr).toBe(0);
});
afterEach(async () => {
  await e.cleanup();
});

const leases = (root: string) => {
  const md = Metadata.open(join(root, 'metadata.db'));
  try {
    return md.listLeases();
  } finally {
    md.close();
  }
};

describe('berth mount and berth gc', () => {
  it('gc keeps a mounted view; unmount drops the view and its lease', async () => {
    const target = join(e.dir, 'view');
    mkdirSync(target);
    const m = await e.berth('mount', DEMO_REF, target);
    expect(m.code, m.stderr).toBe(0);
    try {
      expect(leases(e.root)).toEqual([
        expect.objectContaining({ id: mountKey(target), resources: [{ type: 'snapshot', key: expect.stringMatching(new RegExp(`/${mountKey(target)}$`)) }] }),
      ]);
      const gc = await e.berth('gc', '--json');
      expect(gc.code, gc.stderr).toBe(0);
      const report = JSON.parse(gc.stdout) as { items: Array<{ kind: string; key: string }> };
      expect(report.items.filter((i) => i.kind === 'snapshot')).toEqual([]);
      expect(readdirSync(join(target, 'bin'))).toContain('busybox');

      const again = await e.berth('mount', DEMO_REF, target);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('already has a berth mount');
    } finally {
      const u = await e.berth('unmount', target);
      await unmount(target).catch(() => {});
      expect(u.code, u.stderr).toBe(0);
    }
    expect(leases(e.root)).toEqual([]);
    expect(existsSync(join(target, 'bin'))).toBe(false);
  });
});
