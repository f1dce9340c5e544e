/**
 * `berth convert` through the CLI: the documents on stdout (what berth reads in place of the
 * Compose file, and valid berth manifests on their own), notes on stderr, problems as
 * file:line:col with exit 1; `berth validate` on a directory holding a Compose file.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ComposeDirs } from './helpers.ts';

const REPO = join(import.meta.dirname, '..', '..');
const dirs = new ComposeDirs();
beforeAll(() => dirs.setUp());
afterAll(() => dirs.tearDown());

function berth(dir: string, ...args: string[]) {
  const env = { ...process.env, GREETING: 'from the environment' };
  return spawnSync(join(REPO, 'bin/berth'), ['--root', join(dir, 'root'), '--config', join(dir, 'none.toml'), ...args], { encoding: 'utf8', env });
}

const COMPOSE = `services:
  broker:
    image: eclipse-mosquitto:2.0.18
    network_mode: host
    restart: unless-stopped
    volumes: ["broker_data:/mosquitto/data"]
  worker:
    image: busybox:1.36
    network_mode: none
    command: sh -c 'echo "$$GREETING" && sleep 60'
    environment:
      GREETING: \${GREETING}
      LEVEL: \${LEVEL:-info}
    depends_on:
      broker: {condition: service_healthy}
volumes:
  broker_data: {}
`;

describe('berth convert', () => {
  it('prints the berth documents, with notes above them and on stderr; the output validates as berth manifests', async () => {
    const dir = await dirs.dir({ 'compose.yaml': COMPOSE, '.env': 'LEVEL=debug\n' });
    const r = berth(dir, 'convert', join(dir, 'compose.yaml'));
    expect(r.status, r.stderr).toBe(0);
    const docs = parseAllDocuments(r.stdout);
    expect(Array.isArray(docs)).toBe(true);
    const values = (docs as Array<{ toJS(): any }>).map((d) => d.toJS());
    expect(values.map((v) => `${v.kind}/${v.metadata.name}`)).toEqual([
      'Image/eclipse-mosquitto',
      'Image/busybox',
      'Volume/broker-data',
      'Container/broker',
      'Container/worker',
    ]);
    const worker = values.find((v) => v.metadata.name === 'worker');
    expect(worker.spec).toEqual({
      image: 'busybox',
      args: ['sh', '-c', 'echo "$GREETING" && sleep 60'],
      env: { GREETING: 'from the environment', LEVEL: 'debug' },
      restartPolicy: 'Never',
      network: 'none',
      dependsOn: [{ name: 'broker', condition: 'Healthy' }],
    });
    expect(r.stdout).toMatch(/^# note: services\.broker\.restart: unless-stopped is Always in berth/m);
    expect(r.stderr).toContain(`${join(dir, 'compose.yaml')}:5:14: note: services.broker.restart: unless-stopped is Always in berth`);

    // Taken over: the printed documents are a berth manifest set of their own.
    const taken = await dirs.dir({ 'app.yaml': r.stdout });
    const v = berth(taken, 'validate', '-f', taken);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/valid \(1 file: 2 containers, 2 images, 1 volume\)/);
  });

  it('a file berth cannot honour: every problem as file:line:col, exit 1, nothing on stdout', async () => {
    const dir = await dirs.dir({ 'docker-compose.yml': 'services:\n  web:\n    build: .\n    image: web:1\n    ports: ["80:80"]\n    restrat: always\n' });
    const file = join(dir, 'docker-compose.yml');
    const typo = berth(dir, 'convert', file);
    expect(typo.status).toBe(1);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toContain(`${file}:6:5: services.web: unknown key "restrat"; did you mean "restart"?`);
    await writeFile(file, 'services:\n  web:\n    build: .\n    image: web:1\n    ports: ["80"]\n');
    const r = berth(dir, 'convert', file);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${file}:3:5: services.web.build: berth cannot honour "build"`);
    expect(r.stderr).toContain(`${file}:5:13: services.web.ports[0]: "80" publishes on a random host port`);
    expect(r.stderr).toMatch(/2 problems in /);
  });

  it('berth validate reads a Compose file in the manifests directory', async () => {
    const dir = await dirs.dir({ 'docker-compose.yaml': COMPOSE });
    const r = berth(dir, 'validate', '-f', dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/valid \(1 file: 2 containers, 2 images, 1 volume\)/);
  });
});
