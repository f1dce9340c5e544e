/**
 * The git source end to end, with real git (`git daemon` on loopback), real runc and the demo
 * image: `berth reconcile --now` applies an ssh-signed commit; an unsigned commit is refused
 * (status names the reason, the container is untouched); `berth run` fetches in the background and
 * applies a signed fix without waiting for its resync timer; after a reboot with the remote down,
 * `berth run` brings the last verified revision back up and reports the remote unreachable.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerDoc, DEMO_REF, E2eRoot, requireE2e, unmountUnder, until, type Background } from '../helpers/e2e.ts';
import { ALLOWED_PRINCIPAL, GitFixture } from '../source/git-fixture.ts';

let f: GitFixture;
let e: E2eRoot;
let daemon: Background | undefined;

beforeAll(async () => {
  requireE2e();
  f = await GitFixture.create();
  await f.serve();
  e = await E2eRoot.create('git-source');
  await e.writeConfig(
    `[reconcile]\nresync_interval = "10m"\n[source.git]\nurl = "${f.daemonUrl}"\nref = "main"\npath = "devices"\ninterval = "1s"\n[source.git.verify]\nmode = "ssh"\nallowed_signers = "${f.allowedSigners}"\n`,
  );
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await e?.cleanup();
  await f?.cleanup();
});

const web = (greeting: string) => ({ 'devices/web.yaml': stringify(containerDoc('web', { image: DEMO_REF, env: { GREETING: greeting } })) });

interface SourceRow {
  kind: string;
  name: string;
  state: string;
  reason: string;
  message: string;
}

async function sourceRow(): Promise<SourceRow> {
  const s = await e.status();
  const row = s.objects.find((o) => o.kind === 'Source');
  expect(row).toBeDefined();
  return row as SourceRow;
}

const revision = async () => ((await e.status()).generation as unknown as { revision: string } | null)?.revision;

describe('berth with [source.git]', () => {
  let signed: string;
  let webPid: number;

  it('berth reconcile --now applies an ssh-signed commit', async () => {
    signed = await f.commit(web('one'));
    const r = await e.berth('reconcile', '--now');
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Ready Applied: applied [0-9a-f]{12} signed by release@fleet\.example/);
    expect(r.stdout).toMatch(/done +web: create/);
    const running = await e.running('web');
    expect(running).toBeDefined();
    webPid = running!.pid!;
    expect(await revision()).toBe(signed);
    const row = await sourceRow();
    expect(row).toMatchObject({ name: f.daemonUrl, state: 'Ready', reason: 'Applied' });
    expect(row.message).toContain(`applied: ${signed} (signed by ${ALLOWED_PRINCIPAL})`);
    expect(row.message).toMatch(/^last fetch: \d{4}-/m);
  });

  it('refuses an unsigned commit: status names the reason, nothing changes', async () => {
    const unsigned = await f.commit(web('unsigned'), false);
    const r = await e.berth('reconcile', '--now');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`Stalled NotSigned: commit ${unsigned.slice(0, 12)} is not signed; running ${signed.slice(0, 12)}`);
    expect(r.stdout).not.toMatch(/recreate/);
    expect((await e.running('web'))?.pid).toBe(webPid);
    expect(await revision()).toBe(signed);
    const row = await sourceRow();
    expect(row).toMatchObject({ state: 'Stalled', reason: 'NotSigned' });
    expect(row.message).toContain(`fetched: ${unsigned}`);
    const table = await e.berth('status');
    expect(table.stdout).toMatch(/Source +git:\/\/127\.0\.0\.1:\d+\/fleet\.git +Stalled +NotSigned +commit [0-9a-f]{12} is not signed/);
    expect((await e.status()).events.some((ev) => ev.object.kind === 'Source' && ev.reason === 'NotSigned')).toBe(true);
    // berth plan (no -f) reads the source's current revision too: nothing to change.
    const plan = await e.berth('plan');
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
  });

  let fix: string;
  it('berth run fetches in the background and applies a signed fix at once', async () => {
    daemon = e.start('run');
    await daemon.waitFor(/berth is running/, 30_000);
    fix = await f.commit(web('fixed'));
    const t0 = performance.now();
    await daemon.waitFor(/done +web: recreate/, 60_000);
    console.log(`signed commit pushed → web recreated by berth run (interval 1s): ${Math.round(performance.now() - t0)} ms`);
    await until('the fix is the applied revision', async () => (await revision()) === fix, 30_000);
    expect(await sourceRow()).toMatchObject({ state: 'Ready', reason: 'Applied' });
    const oci = JSON.parse(await readFile(join(e.root, 'containers', 'web', 'config.json'), 'utf8')) as { process: { env: string[] } };
    expect(oci.process.env).toContain('GREETING=fixed');
  });

  it('remote down at boot: the last verified revision runs', async () => {
    await daemon!.stop();
    daemon = undefined;
    // A power cut: tasks and supervisors gone, mounts gone; and the git server is down.
    const rec = JSON.parse(await readFile(join(e.root, 'containers', 'web', 'state.json'), 'utf8')) as { task?: { pid?: number; shimPid?: number } };
    for (const pid of [rec.task?.shimPid, rec.task?.pid]) if (pid) process.kill(pid, 'SIGKILL');
    await until('web is gone', async () => !(await e.running('web')), 15_000);
    await unmountUnder(e.root);
    await f.stopServing();

    daemon = e.start('run');
    await daemon.waitFor(/done +web: (start|restart|create|recreate)/, 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${daemon!.output()}`);
    });
    expect(await e.running('web')).toBeDefined();
    expect(await revision()).toBe(fix);
    await until('the source says the remote is unreachable', async () => (await sourceRow()).reason === 'Unreachable', 30_000);
    const row = await sourceRow();
    expect(row.state).toBe('Reconciling');
    expect(row.message).toContain(`remote unreachable; running ${fix.slice(0, 12)}`);
    const oci = JSON.parse(await readFile(join(e.root, 'containers', 'web', 'config.json'), 'utf8')) as { process: { env: string[] } };
    expect(oci.process.env).toContain('GREETING=fixed');
  }, 180_000);

  it('a fleet from one repo: the device runs what its labels select, its overlay applied', async () => {
    await daemon!.stop();
    daemon = undefined;
    await f.serve();
    await e.writeConfig(
      `[source.git]\nurl = "${f.daemonUrl}"\npath = "fleet"\n[source.git.verify]\nmode = "ssh"\nallowed_signers = "${f.allowedSigners}"\n[device]\nname = "kiosk-7"\nlabels = { site = "berlin" }\n`,
    );
    const doc = (name: string, selector?: object) => ({
      ...(containerDoc(name, { image: DEMO_REF, env: { DEVICE: '${device.name}', SITE: '${device.labels.site}' } }) as object),
      ...(selector ? { selector } : {}),
    });
    const patch = { apiVersion: 'berth.dev/v1alpha1', kind: 'Container', metadata: { name: 'web' }, spec: { env: { GREETING: 'kiosk' } } };
    const fleet = await f.commit({
      'devices/web.yaml': null,
      'fleet/base/web.yaml': stringify(doc('web')),
      'fleet/base/camera.yaml': stringify(doc('camera', { matchLabels: { model: 'rpi4' } })),
      'fleet/groups/berlin.yaml': stringify(doc('kiosk', { matchExpressions: [{ key: 'site', operator: 'In', values: ['berlin', 'paris'] }] })),
      'fleet/devices/kiosk-7/web.yaml': stringify(patch),
      'fleet/devices/other/web.yaml': 'not: [valid',
    });
    const r = await e.berth('reconcile', '--now');
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    // web was replaced: berth reconcile watches the rollout until it is confirmed, as berth apply does.
    expect(r.stdout).toMatch(/rollout: generation \d+ confirmed \(.*web/);
    expect(((await e.status()) as unknown as { latestGeneration: { revision: string } }).latestGeneration.revision).toBe(fleet);
    expect(
      (await e.ps())
        .filter((c) => c.state === 'running')
        .map((c) => c.name)
        .sort(),
    ).toEqual(['kiosk', 'web']);
    const oci = JSON.parse(await readFile(join(e.root, 'containers', 'web', 'config.json'), 'utf8')) as { process: { env: string[] } };
    expect(oci.process.env).toEqual(expect.arrayContaining(['DEVICE=kiosk-7', 'SITE=berlin', 'GREETING=kiosk']));
    const plan = await e.berth('plan', '--explain');
    const checkout = join(e.root, 'sources', fleet, 'fleet');
    expect(plan.stdout).toContain('device kiosk-7 (site=berlin) runs:');
    expect(plan.stdout).toContain(`Container/web  from ${checkout}/base/web.yaml + ${checkout}/devices/kiosk-7/web.yaml`);
    expect(plan.stdout).toContain(`Container/kiosk  from ${checkout}/groups/berlin.yaml`);
  }, 120_000);
});
