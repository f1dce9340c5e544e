/**
 * What berth cannot honour is a problem at its file:line:col naming the key, never dropped; a typo
 * is caught by the Compose specification's own schema; a set holding a Compose file with any
 * problem is refused whole.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkManifests } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { ComposeDirs } from './helpers.ts';

const dirs = new ComposeDirs();
beforeAll(() => dirs.setUp());
afterAll(() => dirs.tearDown());

/** The service's lines (from line 4 on, indented 4) → the one problem expected, as line:col: message. */
const TABLE: Array<[string, string, RegExp]> = [
  ['build', 'build: .', /^4:5: services\.app\.build: berth cannot honour "build": berth runs images, it does not build them/],
  [
    'a port without a host port',
    'ports: ["80"]',
    /^4:13: services\.app\.ports\[0\]: "80" publishes on a random host port, which a device's users could not find: write hostPort:containerPort, e\.g\. 80:80$/,
  ],
  ['a port that is not one', 'ports: ["8080:80/sctp"]', /^4:13: services\.app\.ports\[0\]: "8080:80\/sctp" is not a published port/],
  [
    'a long-form port without published',
    'ports: [{target: 80}]',
    /^4:13: services\.app\.ports\[0\]: no published port: berth publishes on a host port you name \(published: 80\)/,
  ],
  [
    'a network that is not declared',
    'networks: [front]',
    /^4:16: services\.app\.networks\[0\]: network "front" is not declared under the top-level networks: key/,
  ],
  [
    'a static address on a network',
    'networks: {default: {ipv4_address: 10.89.0.9}}',
    /^4:26: services\.app\.networks\.default\.ipv4_address: berth cannot honour "ipv4_address"/,
  ],
  [
    'links',
    'links: [app2]\n    network_mode: host',
    /^4:5: services\.app\.links: berth cannot honour "links": containers on one network resolve each other by name/,
  ],
  [
    'network_mode: host with ports',
    'network_mode: host\n    ports: ["80:80"]',
    /^5:5: services\.app\.ports: network_mode: host gives the service no namespace of its own/,
  ],
  ['network_mode: service:x', 'network_mode: "service:db"', /^4:19: services\.app\.network_mode: berth cannot honour "service:db"/],
  [
    'network_mode: bridge',
    'network_mode: bridge',
    /^4:19: services\.app\.network_mode: "bridge": berth knows host and none; for a private network leave network_mode out and list networks:/,
  ],
  [
    'swarm-only deploy keys',
    'deploy: {placement: {constraints: [node.role==manager]}}',
    /^4:14: services\.app\.deploy\.placement: berth cannot honour "placement" \(a swarm setting/,
  ],
  ['deploy replicas', 'deploy: {replicas: 3}', /^4:24: services\.app\.deploy\.replicas: berth runs one container per service/],
  [
    'deploy reservations',
    'deploy: {resources: {reservations: {memory: 1g}}}',
    /^4:26: services\.app\.deploy\.resources\.reservations: berth cannot honour "reservations"/,
  ],
  [
    'restart_policy max_attempts',
    'deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}',
    /^4:54: services\.app\.deploy\.restart_policy\.max_attempts: berth cannot honour "max_attempts"/,
  ],
  ['restart on-failure:N', 'restart: on-failure:5', /^4:14: services\.app\.restart: berth cannot limit restarts to 5/],
  [
    'restart and deploy.restart_policy disagree',
    'restart: always\n    deploy: {restart_policy: {condition: none}}',
    /^5:42: services\.app\.deploy\.restart_policy\.condition: says none, but restart says always/,
  ],
  ['healthcheck disable', 'healthcheck: {disable: true}', /^4:28: services\.app\.healthcheck: berth cannot switch off an image's HEALTHCHECK yet/],
  ['healthcheck NONE', 'healthcheck: {test: [NONE]}', /^4:25: services\.app\.healthcheck: berth cannot switch off an image's HEALTHCHECK yet/],
  ['healthcheck without a test', 'healthcheck: {interval: 5s}', /^4:18: services\.app\.healthcheck: no test: berth needs the command/],
  [
    'healthcheck start_interval',
    'healthcheck: {test: [CMD, "true"], start_interval: 1s}',
    /^4:40: services\.app\.healthcheck\.start_interval: berth cannot honour "start_interval"/,
  ],
  ['an anonymous volume', 'volumes: [/var/cache]', /^4:15: services\.app\.volumes\[0\]: berth has no anonymous volumes/],
  [
    'an undeclared named volume',
    'volumes: ["data:/data"]',
    /^4:15: services\.app\.volumes\[0\]: volume "data" is not declared under the top-level volumes: key/,
  ],
  ['a volume mode berth cannot honour', 'volumes: ["/srv:/srv:z"]', /^4:15: services\.app\.volumes\[0\]: berth cannot honour the mode z/],
  [
    'a long-form volume option',
    'volumes: [{type: bind, source: /srv, target: /srv, bind: {propagation: shared}}]',
    /^4:56: services\.app\.volumes\[0\]\.bind: berth cannot honour bind/,
  ],
  ['a tmpfs option other than size', 'tmpfs: ["/run:mode=1777"]', /^4:13: services\.app\.tmpfs\[0\]: berth cannot honour the tmpfs option mode=1777/],
  ['a command that needs a shell', 'command: echo a && echo b', /^4:14: services\.app\.command: "&&" needs a shell: write \[\/bin\/sh, -c, "…"\] as a list/],
  ['depends_on a service that is not there', 'depends_on: [db]', /^4:18: services\.app\.depends_on\[0\]: no service "db" in this file/],
  [
    'depends_on restart: true',
    'depends_on: {app2: {condition: service_started, restart: true}}',
    /^4:62: services\.app\.depends_on\.app2\.restart: berth does not restart app when app2 restarts/,
  ],
  ['pids_limit -1', 'pids_limit: -1', /^4:17: services\.app\.pids_limit: berth cannot lift the pids limit/],
  [
    'mem_limit and deploy memory disagree',
    'mem_limit: 64m\n    deploy: {resources: {limits: {memory: 128m}}}',
    /^5:43: services\.app\.deploy\.resources\.limits\.memory: 128m differs from services\.app\.mem_limit: 64m/,
  ],
  ['a size that is not one', 'shm_size: lots', /^4:15: services\.app\.shm_size: "lots" is not a size/],
  ['pull_policy never', 'pull_policy: never', /^4:18: services\.app\.pull_policy: berth cannot honour "never"/],
  ['stdin_open', 'stdin_open: true', /^4:17: services\.app\.stdin_open: berth containers have no standard input/],
  ['secrets', 'secrets: [token]', /^4:5: services\.app\.secrets: berth cannot honour "secrets": berth has no secrets yet/],
  ['logging', 'logging: {driver: syslog}', /^4:5: services\.app\.logging: berth cannot honour "logging"/],
  ['a key berth has no counterpart for', 'cpu_shares: 512', /^4:5: services\.app\.cpu_shares: berth cannot honour "cpu_shares"$/],
  ['env_file that is not there', 'env_file: missing.env', /^4:15: services\.app\.env_file: cannot read missing\.env: ENOENT/],
  // The berth schema's and loader's own checks, placed in the Compose file.
  ['a hostname berth refuses (its schema)', 'hostname: bad_name', /^4:15: spec\.hostname: "bad_name" is not valid/],
  ['a stop_grace_period berth cannot read', 'stop_grace_period: 10us', /^4:24: spec\.stopGracePeriod: "10us" is not a duration/],
  ['an unknown capability (the loader)', 'cap_add: [NET_FOO]', /^4:15: spec\.capAdd\[0\]: "NET_FOO" is not a Linux capability/],
  ['a non-namespaced sysctl (the loader)', 'sysctls: {vm.swappiness: 10}', /^4:30: spec\.sysctls: vm\.swappiness is not namespaced/],
];

describe('a key berth cannot honour is a problem at its place, naming the key', () => {
  for (const [what, lines, expected] of TABLE) {
    it(what, async () => {
      const text = `services:\n  app:\n    image: busybox:1.36\n    ${lines}\n${lines.includes('network_mode') || lines.includes('networks') || lines.includes('ports') ? '' : '    network_mode: host\n'}  app2: {image: busybox:1.36, network_mode: host}\n`;
      const dir = await dirs.dir({ 'compose.yaml': text });
      const r = await checkManifests(dir, { validator: dirs.validator, revision: false });
      expect(r.state).toBeUndefined();
      expect(r.problems.map((p) => formatProblem(p).slice(join(dir, 'compose.yaml').length + 1))).toEqual([expect.stringMatching(expected)]);
    });
  }

  it('top-level secrets, configs, include', async () => {
    const text =
      'services:\n  app: {image: busybox:1.36, network_mode: host}\nnetworks:\n  front: {}\nsecrets:\n  s: {file: ./s}\nconfigs:\n  c: {file: ./c}\ninclude: [other.yaml]\n';
    const { problems } = await dirs.read({ 'compose.yaml': text });
    expect(problems).toEqual([
      expect.stringMatching(/^compose\.yaml:5:1: secrets: berth cannot honour top-level "secrets"/),
      expect.stringMatching(/^compose\.yaml:7:1: configs: berth cannot honour top-level "configs"/),
      expect.stringMatching(/^compose\.yaml:9:1: include: berth cannot honour top-level "include"/),
    ]);
  });

  it('two Compose names that are one berth name', async () => {
    const { problems } = await dirs.read({
      'compose.yaml': 'services:\n  my_app: {image: busybox:1.36, network_mode: host}\n  my-app: {image: busybox:1.36, network_mode: host}\n',
    });
    expect(problems).toEqual([expect.stringMatching(/^compose\.yaml:3:3: container "my-app" and "my_app" are both "my-app" as a berth name/)]);
  });
});

describe("the Compose specification's schema", () => {
  it('a typo in a key is reported at the key with the key it most likely meant', async () => {
    const text =
      'services:\n  app:\n    imgae: busybox:1.36\n    network_mode: host\n    depends_on:\n      db: {condtion: service_healthy}\n  db: {image: busybox:1.36, network_mode: host}\nvolumes:\n  data: {externall: true}\n';
    const { problems } = await dirs.read({ 'compose.yaml': text });
    expect(problems).toEqual([
      'compose.yaml:3:5: services.app: unknown key "imgae"; did you mean "image"?',
      'compose.yaml:6:12: services.app.depends_on.db: unknown key "condtion"; did you mean "condition"?',
      'compose.yaml:9:10: volumes.data: unknown key "externall"; did you mean "external"?',
    ]);
  });

  it('a value of the wrong type', async () => {
    const { problems } = await dirs.read({
      'compose.yaml': 'services:\n  app:\n    image: busybox:1.36\n    network_mode: host\n    cap_add: NET_ADMIN\n    restart: [always]\n',
    });
    expect(problems).toEqual([
      'compose.yaml:5:14: services.app.cap_add: must be a list (got "NET_ADMIN")',
      'compose.yaml:6:14: services.app.restart: must be a string (got a list)',
    ]);
  });

  it('YAML errors and repeated keys come first, at their place', async () => {
    const { problems } = await dirs.read({ 'compose.yaml': 'services:\n  app:\n    image: a:1\n    image: b:1\n' });
    expect(problems).toEqual(['compose.yaml:4:5: YAML: the key "image" is repeated (first at line 3)']);
  });

  it("the vendored schema is the Compose specification's, with its licence and version", async () => {
    const dir = new URL('../../schema/compose-spec/', import.meta.url);
    const schema = JSON.parse(await readFile(new URL('compose-spec.json', dir), 'utf8'));
    expect(schema.title).toBe('Compose Specification');
    expect(await readFile(new URL('LICENSE', dir), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
    expect(await readFile(new URL('README.md', dir), 'utf8')).toMatch(/compose-go at tag v2\.13\.0/);
  });
});

describe('a set holding a Compose file with a problem', () => {
  it('is refused whole: the good berth documents beside it are not applied either', async () => {
    const good = 'apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: other}\nspec: {image: busybox:1.36}\n';
    const dir = await dirs.dir({ 'other.yaml': good, 'docker-compose.yml': 'services:\n  app: {image: busybox:1.36, network_mode: hots}\n' });
    const r = await checkManifests(dir, { validator: dirs.validator, revision: false });
    expect(r.state).toBeUndefined();
    expect(r.problems.map((p) => formatProblem(p).slice(dir.length + 1))).toEqual([
      expect.stringMatching(/^docker-compose\.yml:2:44: services\.app\.network_mode: "hots"/),
    ]);
  });

  it('any of the four Compose file names is read as Compose, other YAML as berth documents', async () => {
    for (const name of ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml']) {
      const dir = await dirs.dir({ [name]: 'services:\n  app: {image: busybox:1.36, network_mode: host}\n' });
      const r = await checkManifests(dir, { validator: dirs.validator, revision: false });
      expect(r.problems.map(formatProblem)).toEqual([]);
      expect(r.state!.containers.map((c) => c.metadata.name)).toEqual(['app']);
    }
    const override = await dirs.dir({
      'docker-compose.yml': 'services:\n  app: {image: busybox:1.36, network_mode: host}\n',
      'docker-compose.override.yml': 'services:\n  app: {init: true}\n',
    });
    expect(
      (await checkManifests(override, { validator: dirs.validator, revision: false })).problems.map((p) => formatProblem(p).slice(override.length + 1)),
    ).toEqual([
      'docker-compose.override.yml: a Compose override file: berth reads one Compose file per directory and does not merge overrides yet; merge it into the Compose file',
    ]);
    const other = await dirs.dir({ 'stack.yaml': 'services:\n  app: {image: busybox:1.36, network_mode: host}\n' });
    expect((await checkManifests(other, { validator: dirs.validator, revision: false })).state).toBeUndefined();
  });
});
