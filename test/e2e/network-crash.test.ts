/**
 * Crash-only networks (issue 12): berth is killed with SIGKILL while netavark sets a container's
 * network up (its record says `setting-up`); the next apply makes the container again, on its
 * network and reachable at its published port, and once the set is empty nothing is left: no veth
 * or bridge (`ip link`), no namespace (`ip netns`, berth's mounts), no firewall rule
 * (`iptables-save`), no address record (`<root>/networks`), no aardvark-dns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEMO_REF, E2eRoot, containerDoc, requireE2e, until } from '../helpers/e2e.ts';

let e: E2eRoot;
const API = 'berth.dev/v1alpha1';

function app(port = 18495): object[] {
  const doc = containerDoc('app', { image: DEMO_REF, script: 'mkdir -p /www && echo crash-ok > /www/index.html && httpd -p 80 -h /www' }) as {
    spec: Record<string, unknown>;
  };
  delete doc.spec.network;
  doc.spec.networks = ['crashnet'];
  doc.spec.ports = [`127.0.0.1:${port}:80`];
  return [{ apiVersion: API, kind: 'Network', metadata: { name: 'crashnet' }, spec: { subnet: '10.231.9.0/24' } }, doc];
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args).toString();

/** What a leak would show: link names, namespaces, firewall rules (without counters), records, berth's mounts, aardvark-dns of this root. */
async function hostNetworkState(): Promise<Record<string, unknown>> {
  const records = await readdir(join(e.root, 'networks')).catch(() => [] as string[]);
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(e.root));
  return {
    // Only what netavark makes (bridges named berth-…, veths), not what other processes on the host do.
    links: sh('ip', ['-o', 'link'])
      .split('\n')
      .map((l) => l.split(':')[1]?.trim())
      .filter((l) => l && /^(berth-|veth)/.test(l))
      .sort(),
    netns: sh('ip', ['netns', 'list']),
    firewall: sh('iptables-save', [])
      .split('\n')
      .filter((l) => l.includes('NETAVARK'))
      .map((l) => l.replace(/\[\d+:\d+\]/, ''))
      .sort(),
    records: records.filter((f) => f.endsWith('.json')),
    mounts,
    aardvark: sh('ps', ['-eo', 'args'])
      .split('\n')
      .filter((l) => l.includes(join(e.root, 'run'))),
  };
}

/** Apply in the background and SIGKILL berth once the container's network record says `setting-up`. */
async function crashMidSetup(): Promise<void> {
  const berth = e.start('apply', '-f', e.manifests, '--no-wait');
  const record = join(e.root, 'networks', 'app.json');
  const settingUp = async () => JSON.parse(await readFile(record, 'utf8')).state === 'setting-up';
  // Mid-setup: netavark is running for it, frozen (SIGSTOP) so that berth cannot see it finish.
  const netavark = await until(
    'netavark setting the container up',
    async () => {
      const pid = Number(sh('pgrep', ['-f', `netavark --config ${join(e.root, 'run')}.* setup`]).split('\n')[0]);
      process.kill(pid, 'SIGSTOP');
      return (await readFile(`/proc/${pid}/stat`, 'utf8')).split(' ')[2] === 'T' && pid;
    },
    60_000,
    5,
  );
  berth.child.kill('SIGKILL');
  await berth.done;
  process.kill(netavark, 'SIGCONT');
  expect(await settingUp()).toBe(true);
  // netavark, berth's child, finishes on its own: recovery starts after it, as after a real crash.
  await until('netavark to finish', () => !sh('ps', ['-eo', 'args']).includes(`netavark --config ${join(e.root, 'run')}`), 30_000);
}

/** Apply `docs` (an empty set allowed) and expect it to converge; returns the run. */
async function applySet(docs: object[]): Promise<{ stdout: string; stderr: string }> {
  await e.writeManifests({ 'set.yaml': docs });
  const r = await e.berth('apply', '-f', e.manifests, '--no-wait', ...(docs.length ? [] : ['--allow-empty']));
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r;
}

/** Field by field, so a failure names what leaked. */
function expectSameState(after: Record<string, unknown>, before: Record<string, unknown>): void {
  for (const k of Object.keys(before)) expect(after[k], k).toEqual(before[k]);
}

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('network-crash');
  await e.importDemo();
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('kill -9 mid network setup', () => {
  it('leaves nothing behind once recovered and removed', async () => {
    // Once through, so netavark's own base chains (kept for every network) exist before the snapshot.
    await applySet(app());
    await applySet([]);
    const before = await hostNetworkState();

    await e.writeManifests({ 'set.yaml': app() });
    await crashMidSetup();

    await applySet(app());
    const res = await fetch('http://127.0.0.1:18495/', { signal: AbortSignal.timeout(5_000) });
    expect((await res.text()).trim()).toBe('crash-ok');
    const during = await hostNetworkState();
    expect(during.records).toEqual(['app.json']);

    // Again while recreating it (a new port), and this time the restart finds it no longer wanted.
    await e.writeManifests({ 'set.yaml': app(18496) });
    await crashMidSetup();
    await applySet([]);
    expectSameState(await hostNetworkState(), before);
  }, 240_000);
});

describe('a namespace lost under a container (what a power cut does to it)', () => {
  it('is set up again from the record before the restart, with the same address and port', async () => {
    await e.writeManifests({ 'set.yaml': app(18497) });
    const daemon = e.start('run', '-f', e.manifests);
    try {
      const answers = async () => (await (await fetch('http://127.0.0.1:18497/', { signal: AbortSignal.timeout(2_000) })).text()).trim() === 'crash-ok';
      await until('app to answer', answers, 60_000, 200);
      // Confirmed first: an exit during the confirmation would roll the change back instead.
      await until('the rollout to settle', async () => !(await e.status()).objects.some((o) => o.reason === 'Progressing'), 60_000, 500);
      const address = JSON.parse((await e.berth('inspect', 'app', '--json')).stdout).networking.addresses.crashnet;
      // The namespace goes (its veth with it) and the task dies, as in a reboot; the record stays.
      execFileSync('umount', [join(e.root, 'run', 'netns', 'app')]);
      process.kill((await e.running('app'))!.pid!, 'SIGKILL');
      await until('app to answer again after its restart', answers, 90_000, 200).catch((err) => {
        throw new Error(`${(err as Error).message}\n${daemon.output().slice(-4000)}`);
      });
      expect(JSON.parse((await e.berth('inspect', 'app', '--json')).stdout).networking).toMatchObject({ addresses: { crashnet: address }, state: 'ready' });
    } finally {
      await daemon.stop();
    }
  }, 180_000);
});

describe('a network record without its container', () => {
  it('is torn down by start-up recovery', async () => {
    await applySet(app(18498));
    await applySet([]);
    const before = await hostNetworkState();
    await applySet(app(18498));
    // What a crash leaves when the container's record is gone but its network record is not.
    const rec = JSON.parse(await readFile(join(e.root, 'networks', 'app.json'), 'utf8'));
    const ghost = {
      ...rec,
      container: 'ghost',
      state: 'setting-up',
      addresses: { crashnet: '10.231.9.50' },
      ports: [],
      netavark: {
        ...rec.netavark,
        container_id: 'f'.repeat(64),
        container_name: 'ghost',
        port_mappings: null,
        networks: { crashnet: { static_ips: ['10.231.9.50'], aliases: [], interface_name: 'eth0' } },
      },
    };
    await writeFile(join(e.root, 'networks', 'ghost.json'), JSON.stringify(ghost));
    const r = await applySet([]);
    expect(r.stderr).toContain('took containers without a record off their networks');
    expectSameState(await hostNetworkState(), before);
  }, 180_000);
});
