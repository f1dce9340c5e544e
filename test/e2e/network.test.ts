/**
 * Networks and published ports on the real stack (issue 12): netavark + aardvark-dns, real runc,
 * through the CLI. Two containers on one network find each other by name and alias and exchange
 * a request; a published port answers on 127.0.0.1 and, bound to 127.0.0.1 only, not on
 * 127.0.0.2; two containers that both listen on :80 coexist on two networks; a host port a
 * process holds blocks only the container that publishes it, naming the process. Subnets in
 * 10.231.0.0/16, off the host's routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { DEMO_REF, E2eRoot, containerDoc, requireE2e, until } from '../helpers/e2e.ts';

let e: E2eRoot;
let holder: Server | undefined;
const CLASHING_SUBNET = '10.231.40.0/24';

const API = 'berth.dev/v1alpha1';
const network = (name: string, subnet: string) => ({ apiVersion: API, kind: 'Network', metadata: { name }, spec: { subnet } });
/** A container serving `text` with busybox httpd on :80, on `networks`, publishing `ports`, with more `spec` fields. */
function web(name: string, text: string, networks: unknown[], ports?: string[], spec: object = {}): object {
  const doc = containerDoc(name, { image: DEMO_REF, script: `mkdir -p /www && echo ${text} > /www/index.html && httpd -p 80 -h /www` }) as {
    spec: Record<string, unknown>;
  };
  delete doc.spec.network;
  doc.spec.networks = networks;
  if (ports) doc.spec.ports = ports;
  Object.assign(doc.spec, spec);
  return doc;
}

async function get(host: string, port: number): Promise<string> {
  const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(5_000) });
  return (await res.text()).trim();
}

/** Whether a TCP connection to host:port is accepted. */
function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 3_000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

beforeAll(async () => {
  requireE2e();
  for (const bin of ['/usr/lib/podman/netavark', '/usr/lib/podman/aardvark-dns']) execFileSync('test', ['-x', bin]);
  e = await E2eRoot.create('network');
  await e.importDemo();
  // A host process holding 127.0.0.1:18492, as another service on the device would.
  holder = createServer(() => {});
  await new Promise<void>((r) => holder!.listen(18492, '127.0.0.1', r));
  // A subnet the host already routes elsewhere (here through lo).
  execFileSync('ip', ['route', 'replace', CLASHING_SUBNET, 'dev', 'lo']);
  await e.writeManifests({
    'set.yaml': [
      network('front', '10.231.1.0/24'),
      network('back', '10.231.2.0/24'),
      web('web', 'hello-front', [{ name: 'front', aliases: ['www'] }], ['127.0.0.1:18490:80']),
      web('web2', 'hello-back', ['back'], ['18491:80']),
      web('client', 'client', ['front']),
      web('blocked', 'never', ['back'], ['127.0.0.1:18492:80']),
      web('web3', 'never', ['back'], ['127.0.0.1:18491:80'], { dependsOn: ['web2'] }),
      network('clash', CLASHING_SUBNET),
      web('clashing', 'never', ['clash']),
    ],
  });
}, 120_000);

afterAll(async () => {
  holder?.close();
  execFileSync('ip', ['route', 'del', CLASHING_SUBNET, 'dev', 'lo']);
  await e?.cleanup();
});

describe('containers on networks', () => {
  let apply: { code: number | null; stdout: string; stderr: string };
  let plan: { code: number | null; stdout: string; stderr: string };
  let bridges: string[] = [];
  beforeAll(async () => {
    apply = await e.berth('apply', '-f', e.manifests, '--no-wait');
    plan = await e.berth('plan', '-f', e.manifests);
  }, 120_000);

  it('a host port in use blocks only the container that publishes it, in the plan, naming the holder', async () => {
    expect(apply.code).toBe(1);
    // The holder is this test process (its command is the worker thread's name). The plan holds
    // the container back: nothing of it is made, so nothing is half-published.
    const held = new RegExp(`blocked: blocked \\(port 18492 in use by pid ${process.pid} \\S+\\)`);
    expect(apply.stdout).toMatch(new RegExp(`waiting +${held.source}`));
    expect(plan.stdout).toMatch(new RegExp(`… ${held.source}`));
    expect(await readdir(join(e.root, 'networks'))).not.toContain('blocked.json');
    expect((await e.ps()).map((c) => c.name)).not.toContain('blocked');
    // A container publishing a port another container of the same turn took: refused under the networks lock.
    expect(apply.stdout).toMatch(/FAILED +web3: .*port 18491 in use by container web2 \(127\.0\.0\.1:18491:80\/tcp\)/);
    expect(
      (await e.ps())
        .filter((c) => c.state === 'running')
        .map((c) => c.name)
        .sort(),
    ).toEqual(['client', 'web', 'web2']);
  });

  it('a subnet the host routes elsewhere blocks only the containers on it, naming the route', () => {
    expect(apply.stdout).toMatch(
      new RegExp(`FAILED +clashing: .*network clash: its subnet ${CLASHING_SUBNET} overlaps the host's route to ${CLASHING_SUBNET} via lo`),
    );
  });

  it('resolves containers by name and alias on their network and exchanges a request', async () => {
    for (const host of ['web', 'www']) {
      const r = await e.berth('exec', 'client', '--', 'wget', '-qO-', `http://${host}/`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('hello-front');
    }
    // web2 is on another network: its name does not resolve from front.
    const other = await e.berth('exec', 'client', '--', 'wget', '-qO-', 'http://web2/');
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("bad address 'web2'");
  });

  it('publishes ports on the host, on the address asked for only', async () => {
    expect(await get('127.0.0.1', 18490)).toBe('hello-front');
    expect(await connects('127.0.0.2', 18490)).toBe(false);
    expect(await get('127.0.0.1', 18491)).toBe('hello-back');
    expect(await get('127.0.0.2', 18491)).toBe('hello-back');
  });

  it('two containers listening on :80 coexist in their own networks, and inspect shows their addresses', async () => {
    const a = JSON.parse((await e.berth('inspect', 'web', '--json')).stdout);
    const b = JSON.parse((await e.berth('inspect', 'web2', '--json')).stdout);
    expect(a.networking.addresses.front).toMatch(/^10\.231\.1\.\d+$/);
    expect(b.networking.addresses.back).toMatch(/^10\.231\.2\.\d+$/);
    expect(a.networking.ports).toEqual(['127.0.0.1:18490:80/tcp']);
    const ls = await e.berth('network', 'ls');
    expect(ls.stdout).toMatch(/front\s+10\.231\.1\.0\/24\s+2/);
    bridges = JSON.parse((await e.berth('network', 'ls', '--json')).stdout).map((n: { bridge: string }) => n.bridge);
    expect(bridges).toHaveLength(2);
    const links = execFileSync('ip', ['-o', 'link']).toString();
    for (const b of bridges) expect(links).toContain(`${b}:`);
  });

  it('removing the containers removes their namespaces, records and bridges', async () => {
    await e.writeManifests({ 'set.yaml': [] });
    const r = await e.berth('apply', '-f', e.manifests, '--allow-empty', '--no-wait');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await readdir(join(e.root, 'networks')).then((f) => f.filter((n) => n.endsWith('.json')))).toEqual([]);
    const links = execFileSync('ip', ['-o', 'link']).toString();
    for (const b of bridges) expect(links).not.toContain(`${b}:`);
    expect(execFileSync('cat', ['/proc/self/mountinfo']).toString()).not.toContain(join(e.root, 'run', 'netns'));
  });
});

describe('a container moving from the host network to a network with the same published port', () => {
  it('is recreated: the port its own old version listens on is not in its way', async () => {
    const hostVersion = containerDoc('mover', {
      image: DEMO_REF,
      script: 'mkdir -p /www && echo host-version > /www/index.html && httpd -p 127.0.0.1:18495 -h /www',
    }) as { spec: Record<string, unknown> };
    hostVersion.spec.network = 'host';
    await e.writeManifests({ 'set.yaml': [hostVersion] });
    const first = await e.berth('apply', '-f', e.manifests, '--no-wait');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    await until('the host-network version answering', () =>
      get('127.0.0.1', 18495).then(
        (t) => t === 'host-version',
        () => false,
      ),
    );

    await e.writeManifests({ 'set.yaml': [network('moved', '10.231.5.0/24'), web('mover', 'net-version', ['moved'], ['127.0.0.1:18495:80'])] });
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.stdout).toMatch(/~ mover: recreate/);
    const second = await e.berth('apply', '-f', e.manifests, '--no-wait');
    expect(second.code, second.stdout + second.stderr).toBe(0);
    await until('the networked version answering', () =>
      get('127.0.0.1', 18495).then(
        (t) => t === 'net-version',
        () => false,
      ),
    );
  }, 120_000);
});
