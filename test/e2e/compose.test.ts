/**
 * A Compose file in the manifests directory, applied by `berth apply` with real runc: the demo
 * image named through `.env` interpolation, a web server (entrypoint and command, a named volume,
 * a healthcheck) and a worker started once web is healthy (depends_on condition service_healthy;
 * env_file and environment, a shell entrypoint string, init,
 * tmpfs, memory and pids limits) that writes the page the web server serves. Then a typo in the
 * Compose file: the apply is refused with the place, and the running containers are left alone.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/registry.ts';
import { DEMO_REF, E2eRoot, requireE2e, until } from '../helpers/e2e.ts';

let e: E2eRoot;
let port: number;

beforeAll(async () => {
  requireE2e();
  port = await freePort();
  e = await E2eRoot.create('compose');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

const compose = () => `services:
  web:
    image: \${DEMO_IMAGE}
    network_mode: host
    entrypoint: [/bin/sh, -c]
    command: ["echo ok > /www/healthz && exec httpd -f -p 127.0.0.1:\${WEB_PORT} -h /www"]
    restart: always
    volumes: ["site_data:/www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:\${WEB_PORT}/healthz"]
      interval: 1s
    stop_grace_period: 1s
  worker:
    image: \${DEMO_IMAGE}
    network_mode: none
    depends_on:
      web: {condition: service_healthy}
    env_file: app.env
    environment:
      - GREETING=\${GREETING:-hello}
    entrypoint: /bin/sh -c
    command: ['echo "$$GREETING $$FROM_FILE $$(cat /proc/1/comm)" > /www/index.html; touch /scratch/ok; exec sleep 3600']
    volumes: ["site_data:/www"]
    tmpfs: /scratch:size=1m
    init: true
    mem_limit: 32m
    pids_limit: 32
    restart: on-failure
    stop_grace_period: 1s
volumes:
  site_data:
`;

describe('a Compose file through berth apply (real runc)', () => {
  it('runs its services as containers with the mapped settings', async () => {
    await e.writeManifests({
      'compose.yaml': compose(),
      '.env': `DEMO_IMAGE=${DEMO_REF}\nWEB_PORT=${port}\nGREETING=hi-from-dotenv\n`,
      'app.env': 'FROM_FILE="from the env_file"\n',
    });
    const r = await e.berth('apply', '-f', e.manifests);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/done +web: create/);
    // depends_on condition service_healthy: the worker waits until web's health check passed.
    const waited = r.stdout.search(/waiting +worker: create waits for web to be healthy \(not checked yet\)/);
    expect(waited, r.stdout).toBeGreaterThan(-1);
    expect(r.stdout.slice(waited)).toMatch(/done +worker: create/);
    const ps = await e.ps();
    expect(ps.map((c) => [c.name, c.state]).sort()).toEqual([
      ['web', 'running'],
      ['worker', 'running'],
    ]);

    // The worker wrote the page into the shared volume (named site-data in berth); web serves it.
    const body = await until('the page the worker wrote', async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      return text.startsWith('hi-from-dotenv') ? text : undefined;
    });
    // .env's GREETING, the env_file's FROM_FILE, and berth's init (tini, mounted as /init) as PID 1
    // (init: true; without it PID 1 would be the sleep the shell execs).
    expect(body.trim()).toBe('hi-from-dotenv from the env_file init');
    expect(await readFile(join(e.root, 'volumes', 'site-data', 'index.html'), 'utf8')).toBe(body);

    const inspect = await e.berth('inspect', 'worker', '--json');
    expect(inspect.code, inspect.stderr).toBe(0);
    const spec = JSON.parse(inspect.stdout).spec;
    expect(spec).toMatchObject({ network: 'none', init: true, command: ['/bin/sh', '-c'], resources: { memoryBytes: 32 * 1024 * 1024, pids: 32 } });
    expect(spec.mounts).toContainEqual({ type: 'tmpfs', target: '/scratch', sizeBytes: 1024 * 1024 });
  }, 180_000);

  it('a typo in the Compose file refuses the set with its place; the running containers are left alone', async () => {
    const before = await e.ps();
    await writeFile(join(e.manifests, 'compose.yaml'), compose().replace('    restart: on-failure\n', '    restrat: on-failure\n'));
    const r = await e.berth('apply', '-f', e.manifests);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`${join(e.manifests, 'compose.yaml')}:28:5: services.worker: unknown key "restrat"; did you mean "restart"?`);
    const after = await e.ps();
    expect(after.map((c) => [c.name, c.state, c.pid])).toEqual(before.map((c) => [c.name, c.state, c.pid]));
  }, 60_000);
});
