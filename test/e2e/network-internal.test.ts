/**
 * Networks under `berth run` with real runc and netavark (issue 12): a container on an `internal`
 * network reaches its own subnet only, not the outside (a network namespace this test makes,
 * behind a veth pair, with a server in it), while a container on an ordinary network reaches that
 * server; `berth network ls` lists a declared network that has no containers; `/metrics` counts
 * each network's containers and published ports; http and tcp health checks are made from inside
 * each container's namespace (its own 127.0.0.1). Subnets in 10.231.0.0/16, off the host's routes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/registry.ts';
import { DEMO_REF, E2eRoot, containerDoc, requireE2e, until, type Background } from '../helpers/e2e.ts';

const OUTSIDE_NS = `berth-test-outside-${process.pid}`;
const VETH = `bto${process.pid % 100000}`;
const OUTSIDE_IP = '10.231.70.2';

let e: E2eRoot;
let daemon: Background | undefined;
let server: ChildProcess | undefined;
let metricsPort: number;
let publishedPort: number;

const API = 'berth.dev/v1alpha1';
const network = (name: string, subnet: string, internal = false) => ({
  apiVersion: API,
  kind: 'Network',
  metadata: { name },
  spec: { subnet, ...(internal ? { internal } : {}) },
});
function web(name: string, networks: string[], ports?: string[], healthcheck?: object): object {
  const doc = containerDoc(name, { image: DEMO_REF, script: `mkdir -p /www && echo ${name} > /www/index.html && httpd -p 80 -h /www` }) as {
    spec: Record<string, unknown>;
  };
  delete doc.spec.network;
  doc.spec.networks = networks;
  if (ports) doc.spec.ports = ports;
  if (healthcheck) doc.spec.healthcheck = healthcheck;
  return doc;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

beforeAll(async () => {
  requireE2e();
  for (const bin of ['/usr/lib/podman/netavark', '/usr/lib/podman/aardvark-dns']) execFileSync('test', ['-x', bin]);
  // The outside: a namespace of its own behind a veth pair, 10.231.70.1 (host) ↔ 10.231.70.2.
  sh('ip', ['netns', 'add', OUTSIDE_NS]);
  sh('ip', ['link', 'add', `${VETH}h`, 'type', 'veth', 'peer', 'name', `${VETH}n`, 'netns', OUTSIDE_NS]);
  sh('ip', ['addr', 'add', '10.231.70.1/24', 'dev', `${VETH}h`]);
  sh('ip', ['link', 'set', `${VETH}h`, 'up']);
  sh('ip', ['-n', OUTSIDE_NS, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', `${VETH}n`]);
  sh('ip', ['-n', OUTSIDE_NS, 'link', 'set', `${VETH}n`, 'up']);
  server = spawn(
    'ip',
    ['netns', 'exec', OUTSIDE_NS, process.execPath, '-e', `require('node:http').createServer((q, s) => s.end('outside\\n')).listen(8099, '${OUTSIDE_IP}')`],
    { stdio: 'ignore' },
  );
  await until('the outside server', () => {
    try {
      return sh('ip', ['netns', 'exec', OUTSIDE_NS, 'ss', '-Hltn', 'sport = :8099']).includes('8099');
    } catch {
      return false;
    }
  });

  metricsPort = await freePort();
  publishedPort = await freePort();
  e = await E2eRoot.create('network-internal', { config: `[metrics]\naddress = "127.0.0.1:${metricsPort}"\n[reconcile]\nresync_interval = "5m"` });
  await e.importDemo();
  await e.writeManifests({
    'set.yaml': [
      network('open', '10.231.71.0/24'),
      network('closed', '10.231.72.0/24', true),
      network('idle', '10.231.73.0/24'),
      // Health probes from inside each container's namespace: its 127.0.0.1 is its own.
      web('out', ['open'], [`127.0.0.1:${publishedPort}:80`], { http: { port: 80, path: '/' }, interval: '1s', timeout: '10s' }),
      web('in', ['closed'], undefined, { tcp: { port: 80 }, interval: '1s', timeout: '10s' }),
      web('peer', ['closed']),
    ],
  });
  daemon = e.start('run', '-f', e.manifests);
  await until('the three containers running', async () => (await e.ps()).filter((c) => c.state === 'running').length === 3, 120_000, 500);
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await e?.cleanup();
  server?.kill('SIGKILL');
  try {
    sh('ip', ['netns', 'del', OUTSIDE_NS]); // takes the veth pair with it
  } catch {}
});

describe('networks under berth run', () => {
  it('a container on an internal network reaches its subnet, not the outside; one on an ordinary network does', async () => {
    const open = await e.berth('exec', 'out', '--', 'wget', '-qO-', `http://${OUTSIDE_IP}:8099/`);
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout.trim()).toBe('outside');

    const closed = await e.berth('exec', 'in', '--', 'wget', '-qO-', `http://${OUTSIDE_IP}:8099/`);
    expect(closed.code).not.toBe(0);
    expect(closed.stdout).not.toContain('outside');
    expect(closed.stderr).toMatch(/unreachable|timed out|refused/i);

    const peer = await e.berth('exec', 'in', '--', 'wget', '-qO-', 'http://peer/');
    expect(peer.code, peer.stderr).toBe(0);
    expect(peer.stdout.trim()).toBe('peer');
  }, 60_000);

  it('berth network ls lists a declared network without containers', async () => {
    const nets = JSON.parse((await e.berth('network', 'ls', '--json')).stdout) as {
      name: string;
      containers: string[];
      internal: boolean;
      declared: boolean;
      publishedPorts: number;
    }[];
    expect(nets.map((n) => [n.name, n.containers.sort(), n.internal, n.declared, n.publishedPorts])).toEqual([
      ['closed', ['in', 'peer'], true, true, 0],
      ['idle', [], false, true, 0],
      ['open', ['out'], false, true, 1],
    ]);
    const table = (await e.berth('network', 'ls')).stdout;
    expect(table).toMatch(/^idle\s+10\.231\.73\.0\/24\s+0\s+0\s/m);
    expect(table).toMatch(/^closed \(internal\)\s+10\.231\.72\.0\/24\s+2\s+0\s/m);
  });

  it("/metrics counts each network's containers and published ports", async () => {
    const text = await until('network metrics', async () => {
      const t = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return t.includes('berth_network_containers{network="idle"}') ? t : undefined;
    });
    expect(text).toContain('berth_network_containers{network="closed"} 2');
    expect(text).toContain('berth_network_containers{network="open"} 1');
    expect(text).toContain('berth_network_containers{network="idle"} 0');
    expect(text).toContain('berth_network_published_ports{network="open"} 1');
    expect(text).toContain('berth_network_published_ports{network="closed"} 0');
  });

  it('http and tcp health checks probe each container on its own network namespace', async () => {
    const health = async (name: string) => ((await e.ps()).find((c) => c.name === name) as { health?: string } | undefined)?.health;
    await until('out and in healthy', async () => (await health('out')) === 'healthy' && (await health('in')) === 'healthy', 60_000, 500);
    // From the host, 127.0.0.1:80 has nothing: healthy means the probes ran in the containers' namespaces.
    expect(daemon!.output()).not.toMatch(/health check not run/);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('berth_container_healthy{container="out"} 1');
    expect(text).toContain('berth_container_healthy{container="in"} 1');
  }, 90_000);
});
