/**
 * A Compose file whose services meet on a network, through `berth apply` with real runc and
 * netavark (issue 12): two services on one network resolve each other by name and alias and
 * exchange a request, and a published port answers on the host. Subnet in 10.231.0.0/16, off the
 * host's routes.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/registry.ts';
import { DEMO_REF, E2eRoot, requireE2e } from '../helpers/e2e.ts';

let e: E2eRoot;
let port: number;

beforeAll(async () => {
  requireE2e();
  for (const bin of ['/usr/lib/podman/netavark', '/usr/lib/podman/aardvark-dns']) execFileSync('test', ['-x', bin]);
  port = await freePort();
  e = await E2eRoot.create('compose-network');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

const COMPOSE = `services:
  web:
    image: \${DEMO_IMAGE}
    entrypoint: [/bin/sh, -c]
    command: ['mkdir -p /www && echo hello-compose > /www/index.html && exec httpd -f -p 80 -h /www']
    ports: ["127.0.0.1:\${WEB_PORT}:80"]
    networks:
      front: {aliases: [site]}
    stop_grace_period: 1s
  client:
    image: \${DEMO_IMAGE}
    container_name: the_client
    networks: [front]
    entrypoint: [/bin/sh, -c]
    command: ['mkdir -p /www && echo hello-client > /www/index.html && exec httpd -f -p 80 -h /www']
    stop_grace_period: 1s
networks:
  front:
    ipam:
      config: [{subnet: 10.231.60.0/24}]
`;

describe('a Compose file with a network and a published port (real runc, netavark)', () => {
  it('its services resolve each other by name and alias, and the published port answers on the host', async () => {
    await e.writeManifests({ 'compose.yaml': COMPOSE, '.env': `DEMO_IMAGE=${DEMO_REF}\nWEB_PORT=${port}\n` });
    const r = await e.berth('apply', '-f', e.manifests, '--no-wait');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await e.ps()).map((c) => [c.name, c.state]).sort()).toEqual([
      ['the-client', 'running'],
      ['web', 'running'],
    ]);
    // By container name, by alias, and (the client) by its service name, which Compose resolves too.
    for (const host of ['web', 'site']) {
      const got = await e.berth('exec', 'the-client', '--', 'wget', '-qO-', `http://${host}/`);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout.trim()).toBe('hello-compose');
    }
    const back = await e.berth('exec', 'web', '--', 'wget', '-qO-', 'http://client/');
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout.trim()).toBe('hello-client');

    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
    expect((await res.text()).trim()).toBe('hello-compose');
    const inspect = JSON.parse((await e.berth('inspect', 'web', '--json')).stdout);
    expect(inspect.networking.ports).toEqual([`127.0.0.1:${port}:80/tcp`]);
    expect(inspect.networking.addresses.front).toMatch(/^10\.231\.60\.\d+$/);
  }, 180_000);
});
