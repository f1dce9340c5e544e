/**
 * The import directory (air-gapped provisioning): an archive is imported once, every digest
 * verified; an unchanged archive is not read again on the next start; a replaced one is. And the
 * manifests path comes from the config (`reconcile.manifests`) when `-f` is not given, as the
 * systemd unit runs `berth run`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { containerDoc, DEMO_REF, E2eRoot, requireE2e } from '../helpers/e2e.ts';

let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('import-dir');
  await e.writeConfig(`[reconcile]\nmanifests = "${e.manifests}"`);
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

const imported = async () => (await e.status()).events.filter((ev) => ev.reason === 'Imported').length;

describe('the import directory and the configured manifests path', () => {
  it('imports an archive once, again only when it changed; -f defaults to reconcile.manifests', async () => {
    await e.writeManifests({ 'app.yaml': [containerDoc('app', { image: DEMO_REF, script: 'sleep 1000' })] });
    const first = await e.berth('apply');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(await imported()).toBe(1);
    expect((await e.running('app'))?.state).toBe('running');

    const second = await e.berth('apply');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/no changes/);
    expect(await imported()).toBe(1); // unchanged archive: not read again

    const later = new Date(Date.now() + 60_000);
    await utimes(join(e.root, 'import', 'demo.tar'), later, later);
    expect((await e.berth('apply')).code).toBe(0);
    expect(await imported()).toBe(2); // a replaced archive is imported (and verified) again

    const plan = await e.berth('plan');
    expect(plan.code, plan.stderr).toBe(0);
  });
});
