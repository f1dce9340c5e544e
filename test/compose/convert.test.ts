/**
 * A Compose file with every key berth maps becomes the expected berth documents, which the loader
 * then accepts as any other set; the table below each key's Compose forms (list and map, string and
 * list) and what they become.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkManifests } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { ComposeDirs } from './helpers.ts';

const dirs = new ComposeDirs();
beforeAll(() => dirs.setUp());
afterAll(() => dirs.tearDown());

const EVERY_KEY = `name: every-key
x-host: &host
  network_mode: host
services:
  broker:
    <<: *host
    image: eclipse-mosquitto:2.0.18
    container_name: mqtt_broker
    entrypoint: /usr/sbin/mosquitto
    command: ["-c", "/mosquitto-no-auth.conf"]
    user: "1883:1883"
    working_dir: /mosquitto
    restart: always
    volumes:
      - mosquitto_data:/mosquitto/data
      - type: bind
        source: ./mosquitto.conf
        target: /mosquitto/config/mosquitto.conf
        read_only: true
      - type: tmpfs
        target: /run
        tmpfs: {size: 8m}
    healthcheck:
      test: ["CMD-SHELL", "mosquitto_sub -t '$$SYS/#' -C 1 -W 3"]
      interval: 30s
      timeout: 5s
      retries: 5
      start_period: 10s
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    labels:
      com.example.role: broker
    pull_policy: always
  worker:
    image: ghcr.io/acme/worker:1.4
    network_mode: none
    entrypoint: ["/bin/worker"]
    command: --broker "tcp://127.0.0.1:1883" --name 'w 1'
    env_file: [worker.env]
    environment:
      - LOG_LEVEL=\${LOG_LEVEL:-info}
      - REGION
      - NOT_SET_ANYWHERE
      - EMPTY=
    depends_on:
      broker:
        condition: service_healthy
    restart: on-failure
    devices:
      - /dev/ttyUSB0:/dev/ttyUSB0:rw
      - source: /dev/i2c-1
        permissions: rw
    device_cgroup_rules: ["c 188:* rmw"]
    cap_add: [SYS_TIME]
    cap_drop: [NET_RAW]
    privileged: false
    init: true
    hostname: worker-1
    extra_hosts: ["cloud.local:10.0.0.5"]
    dns: 10.0.0.53
    sysctls: ["net.ipv4.tcp_keepalive_time=600"]
    ulimits:
      nofile: {soft: 4096, hard: 8192}
      core: 0
    shm_size: 128m
    tmpfs: /tmp:size=16m
    read_only: true
    group_add: [dialout]
    mem_limit: 64m
    pids_limit: 100
    cpus: 0.5
    labels: ["com.example.role=worker"]
    deploy:
      resources:
        limits: {memory: 64M}
  ui:
    image: nodered/node-red:3.1
    network_mode: host
    restart: unless-stopped
    depends_on: [broker]
    volumes: ["ui-data:/data", "/etc/localtime:/etc/localtime:ro"]
    environment:
      TZ: Europe/Amsterdam
      PORT: 1880
    extra_hosts:
      cloud.local: 10.0.0.5
    sysctls:
      kernel.shmmax: 65536
    healthcheck:
      test: wget -q -O /dev/null http://127.0.0.1:1880/
    deploy:
      resources:
        limits: {cpus: "0.75", memory: 256M, pids: 200}
      restart_policy: {condition: any}
    platform: linux/arm64
volumes:
  mosquitto_data:
  ui-data:
    name: node-red-data
`;

const WORKER_ENV = `# the worker's settings
API_KEY="abc 123"
LOG_LEVEL=debug
`;

const meta = (kind: string, name: string) => ({ apiVersion: 'berth.dev/v1alpha1', kind, metadata: { name } });

describe('a Compose file with every mapped key', () => {
  it('converts to the expected documents, which the loader accepts', async () => {
    const { dir, result, problems, notes } = await dirs.read({ 'compose.yaml': EVERY_KEY, 'worker.env': WORKER_ENV }, { REGION: 'eu-west' });
    expect(problems).toEqual([]);
    expect(result.drafts.map((d) => d.value)).toEqual([
      { ...meta('Image', 'eclipse-mosquitto'), spec: { ref: 'eclipse-mosquitto:2.0.18', pullPolicy: 'Always' } },
      { ...meta('Image', 'worker'), spec: { ref: 'ghcr.io/acme/worker:1.4' } },
      { ...meta('Image', 'node-red'), spec: { ref: 'nodered/node-red:3.1', platform: 'linux/arm64' } },
      meta('Volume', 'mosquitto-data'),
      meta('Volume', 'node-red-data'),
      {
        ...meta('Container', 'mqtt-broker'),
        spec: {
          image: 'eclipse-mosquitto',
          command: ['/usr/sbin/mosquitto'],
          args: ['-c', '/mosquitto-no-auth.conf'],
          user: '1883:1883',
          workingDir: '/mosquitto',
          restartPolicy: 'Always',
          network: 'host',
          mounts: [
            { type: 'volume', name: 'mosquitto-data', target: '/mosquitto/data' },
            { type: 'bind', source: join(dir, 'mosquitto.conf'), target: '/mosquitto/config/mosquitto.conf', readOnly: true },
            { type: 'tmpfs', target: '/run', size: '8Mi' },
          ],
          healthcheck: { exec: ['/bin/sh', '-c', "mosquitto_sub -t '$SYS/#' -C 1 -W 3"], interval: '30s', timeout: '5s', retries: 5, startPeriod: '10s' },
          stopSignal: 'SIGINT',
          stopGracePeriod: '1m30s',
          labels: { 'com.example.role': 'broker' },
        },
      },
      {
        ...meta('Container', 'worker'),
        spec: {
          image: 'worker',
          command: ['/bin/worker'],
          args: ['--broker', 'tcp://127.0.0.1:1883', '--name', 'w 1'],
          env: { API_KEY: 'abc 123', LOG_LEVEL: 'info', REGION: 'eu-west', EMPTY: '' },
          restartPolicy: 'OnFailure',
          network: 'none',
          dependsOn: [{ name: 'mqtt-broker', condition: 'Healthy' }],
          mounts: [{ type: 'tmpfs', target: '/tmp', size: '16Mi' }],
          devices: ['/dev/ttyUSB0:/dev/ttyUSB0:rw', { path: '/dev/i2c-1', permissions: 'rw' }],
          deviceCgroupRules: ['c 188:* rmw'],
          capAdd: ['SYS_TIME'],
          capDrop: ['NET_RAW'],
          groupAdd: ['dialout'],
          init: true,
          readOnlyRootfs: true,
          hostname: 'worker-1',
          extraHosts: ['cloud.local:10.0.0.5'],
          dns: ['10.0.0.53'],
          sysctls: { 'net.ipv4.tcp_keepalive_time': '600' },
          ulimits: { nofile: { soft: 4096, hard: 8192 }, core: 0 },
          shmSize: '128Mi',
          resources: { memory: '64Mi', cpus: 0.5, pids: 100 },
          labels: { 'com.example.role': 'worker' },
        },
      },
      {
        ...meta('Container', 'ui'),
        spec: {
          image: 'node-red',
          env: { TZ: 'Europe/Amsterdam', PORT: '1880' },
          restartPolicy: 'Always',
          network: 'host',
          dependsOn: ['mqtt-broker'],
          mounts: [
            { type: 'volume', name: 'node-red-data', target: '/data' },
            { type: 'bind', source: '/etc/localtime', target: '/etc/localtime', readOnly: true },
          ],
          extraHosts: ['cloud.local:10.0.0.5'],
          sysctls: { 'kernel.shmmax': 65536 },
          resources: { memory: '256Mi', cpus: 0.75, pids: 200 },
          healthcheck: { exec: ['/bin/sh', '-c', 'wget -q -O /dev/null http://127.0.0.1:1880/'] },
        },
      },
    ]);
    expect(notes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^compose\.yaml:5:3: container "mqtt_broker" is named "mqtt-broker"/),
        expect.stringMatching(/^compose\.yaml:97:3: volume "mosquitto_data" is named "mosquitto-data"/),
        expect.stringMatching(/^compose\.yaml:79:14: services\.ui\.restart: unless-stopped is Always in berth/),
      ]),
    );

    // The same file in a manifests directory: the loader reads it as these documents.
    const loaded = await checkManifests(dir, { validator: dirs.validator, revision: false });
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    const s = loaded.state!;
    expect(s.containers.map((c) => [c.metadata.name, c.imageRef])).toEqual([
      ['mqtt-broker', 'docker.io/library/eclipse-mosquitto:2.0.18'],
      ['worker', 'ghcr.io/acme/worker:1.4'],
      ['ui', 'docker.io/nodered/node-red:3.1'],
    ]);
    const worker = s.containers.find((c) => c.metadata.name === 'worker')!;
    expect(worker.spec.capAdd).toEqual(['CAP_SYS_TIME']);
    // depends_on condition service_healthy: started only once the broker's health check passed.
    expect([worker.spec.dependsOn, worker.spec.dependsOnHealthy]).toEqual([['mqtt-broker'], ['mqtt-broker']]);
    expect(s.containers.find((c) => c.metadata.name === 'ui')!.spec.dependsOnHealthy).toBeUndefined();
    expect(worker.spec.resources).toEqual({ memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 100 });
    expect(worker.spec.shmSizeBytes).toBe(128 * 1024 * 1024);
    expect(s.containers.find((c) => c.metadata.name === 'mqtt-broker')!.spec.stopGracePeriodMs).toBe(90_000);
    expect(s.volumes.map((v) => v.metadata.name)).toEqual(['mosquitto-data', 'node-red-data']);
  });
});

/** One service's keys (with network_mode: host) → what its Container spec has for them. */
const SERVICE_TABLE: Array<[string, string, Record<string, unknown>]> = [
  [
    'entrypoint as a list, command as a string',
    'entrypoint: [/bin/sh, -c]\n    command: "echo \'a b\' c"',
    { command: ['/bin/sh', '-c'], args: ['echo', 'a b', 'c'] },
  ],
  ['entrypoint as a string, no command', 'entrypoint: /bin/app --flag', { command: ['/bin/app', '--flag'] }],
  ["an empty entrypoint clears the image's", 'entrypoint: []', { command: [] }],
  ['environment as a map with numbers and booleans', 'environment: {A: 1, B: true, C: "x"}', { env: { A: '1', B: 'true', C: 'x' } }],
  ['environment as a list', 'environment: ["A=1", "B=x=y"]', { env: { A: '1', B: 'x=y' } }],
  ['restart no', 'restart: "no"', { restartPolicy: 'Never' }],
  ['restart always', 'restart: always', { restartPolicy: 'Always' }],
  ['restart on-failure', 'restart: on-failure', { restartPolicy: 'OnFailure' }],
  ['restart unless-stopped', 'restart: unless-stopped', { restartPolicy: 'Always' }],
  ["no restart: Compose's default, no", 'user: app', { restartPolicy: 'Never', user: 'app' }],
  ['deploy.restart_policy none', 'deploy: {restart_policy: {condition: none}}', { restartPolicy: 'Never' }],
  ['healthcheck CMD', 'healthcheck: {test: [CMD, /bin/true], interval: 1m, retries: 2}', { healthcheck: { exec: ['/bin/true'], interval: '1m', retries: 2 } }],
  [
    'healthcheck CMD-SHELL',
    'healthcheck: {test: [CMD-SHELL, "test -f /ok"], timeout: 2s}',
    { healthcheck: { exec: ['/bin/sh', '-c', 'test -f /ok'], timeout: '2s' } },
  ],
  [
    'tmpfs as a list',
    'tmpfs: [/run, "/tmp:size=1g"]',
    {
      mounts: [
        { type: 'tmpfs', target: '/run' },
        { type: 'tmpfs', target: '/tmp', size: '1Gi' },
      ],
    },
  ],
  ['a byte size that is no whole Ki', 'shm_size: 1000', { shmSize: 1000 }],
  ['mem_limit as a number of bytes', 'mem_limit: 1048576', { resources: { memory: '1Mi' } }],
  ['dns as a list', 'dns: [1.1.1.1, 9.9.9.9]', { dns: ['1.1.1.1', '9.9.9.9'] }],
  ['extra_hosts, several addresses for one name', 'extra_hosts: {db: [10.0.0.1, "::1"]}', { extraHosts: ['db:10.0.0.1', 'db:::1'] }],
  ['labels as a list, one without a value', 'labels: ["a=1", "b"]', { labels: { a: '1', b: '' } }],
  ['privileged', 'privileged: true', { privileged: true }],
  ['tty', 'tty: true', { tty: true }],
  ['stop_signal without SIG', 'stop_signal: USR1', { stopSignal: 'USR1' }],
  ['x- keys are ignored', 'x-note: anything', {}],
  ['expose is ignored (a note says so)', 'expose: ["80"]', {}],
  ['scale 1, tty and stdin_open false', 'scale: 1\n    tty: false\n    stdin_open: false', {}],
];

describe('each service key', () => {
  for (const [what, keys, expected] of SERVICE_TABLE) {
    it(what, async () => {
      const text = `services:\n  app:\n    image: busybox:1.36\n    network_mode: host\n    ${keys}\n`;
      const { result, problems } = await dirs.read({ 'compose.yaml': text });
      expect(problems).toEqual([]);
      const spec = result.drafts.find((d) => d.value.kind === 'Container')!.value.spec;
      expect(spec).toEqual({ image: 'busybox', restartPolicy: 'Never', network: 'host', ...expected });
    });
  }

  it('depends_on as a list and as a map; required: false on a missing service leaves it out', async () => {
    const text = `services:
  a: {image: busybox:1.36, network_mode: host, depends_on: [b]}
  b: {image: busybox:1.36, network_mode: host, depends_on: {c: {condition: service_completed_successfully}, gone: {condition: service_started, required: false}}}
  c: {image: busybox:1.36, network_mode: none}
`;
    const { result, problems, notes } = await dirs.read({ 'compose.yaml': text });
    expect(problems).toEqual([]);
    const deps = Object.fromEntries(result.drafts.filter((d) => d.value.kind === 'Container').map((d) => [d.value.metadata.name, d.value.spec.dependsOn]));
    expect(deps).toEqual({ a: ['b'], b: ['c'], c: undefined });
    expect(notes).toEqual([
      expect.stringMatching(/:3:76: services\.b\.depends_on\.c\.condition: berth starts b once c is running or has exited 0/),
      expect.stringMatching(/:3:115: services\.b\.depends_on\.gone: gone is not a service here \(required: false\): left out/),
    ]);
    // One Image for one image, however many services run it.
    expect(result.drafts.filter((d) => d.value.kind === 'Image')).toHaveLength(1);
  });

  it('profiles: a service whose profile is not active is left out, as in Compose; COMPOSE_PROFILES turns it on', async () => {
    const text = 'services:\n  a: {image: busybox:1.36, network_mode: host}\n  debug: {image: busybox:1.36, network_mode: host, profiles: [debug]}\n';
    const off = await dirs.read({ 'compose.yaml': text });
    expect(off.result.drafts.filter((d) => d.value.kind === 'Container').map((d) => d.value.metadata.name)).toEqual(['a']);
    const on = await dirs.read({ 'compose.yaml': text }, { COMPOSE_PROFILES: 'debug' });
    expect(on.result.drafts.filter((d) => d.value.kind === 'Container').map((d) => d.value.metadata.name)).toEqual(['a', 'debug']);
  });

  it('two images with one base name get distinct Image names', async () => {
    const text = 'services:\n  a: {image: "reg.local/app:1", network_mode: host}\n  b: {image: "other.local/app:2", network_mode: host}\n';
    const { result } = await dirs.read({ 'compose.yaml': text });
    expect(result.drafts.filter((d) => d.value.kind === 'Image').map((d) => [d.value.metadata.name, d.value.spec.ref])).toEqual([
      ['app', 'reg.local/app:1'],
      ['app-2', 'other.local/app:2'],
    ]);
  });
});

describe('examples/compose-mqtt', () => {
  it('is read as a web UI, an MQTT broker and a worker on the default network, the worker after the broker is healthy', async () => {
    const dir = join(import.meta.dirname, '..', '..', 'examples', 'compose-mqtt');
    const r = await checkManifests(dir, { validator: dirs.validator, revision: false });
    expect(r.problems.map(formatProblem)).toEqual([]);
    const s = r.state!;
    expect(s.containers.map((c) => [c.metadata.name, c.imageRef, c.spec.networks, c.spec.restartPolicy, c.spec.dependsOn, c.spec.dependsOnHealthy])).toEqual([
      ['mqtt', 'docker.io/library/eclipse-mosquitto:2.0.18', [{ name: 'berth', aliases: [] }], 'Always', [], undefined],
      ['ui', 'docker.io/nodered/node-red:3.1.9', [{ name: 'berth', aliases: [] }], 'Always', ['mqtt'], undefined],
      ['worker', 'ghcr.io/acme/sensor-worker:1.2.0', [{ name: 'berth', aliases: [] }], 'Always', ['mqtt'], ['mqtt']],
    ]);
    expect(s.containers.map((c) => c.spec.ports)).toEqual([
      [{ hostIp: '127.0.0.1', hostPort: 1883, containerPort: 1883, protocol: 'tcp', range: 1 }],
      [{ hostPort: 1880, containerPort: 1880, protocol: 'tcp', range: 1 }],
      undefined,
    ]);
    const worker = s.containers.find((c) => c.metadata.name === 'worker')!;
    expect(worker.spec.env).toMatchObject({ SERIAL_PORT: '/dev/ttyUSB0', SENSOR_IDS: '101,102,103,117', MQTT_URL: 'tcp://mqtt:1883' });
    expect(worker.spec.devices).toEqual([{ path: '/dev/ttyUSB0', target: '/dev/ttyUSB0', permissions: 'rw' }]);
    expect(s.containers.find((c) => c.metadata.name === 'mqtt')!.spec.healthcheck?.exec).toEqual([
      '/bin/sh',
      '-c',
      "mosquitto_sub -t '$SYS/broker/uptime' -C 1 -W 3",
    ]);
    expect(s.volumes.map((v) => v.metadata.name)).toEqual(['mqtt-data', 'ui-data']);
  });
});

const NETWORKS = `services:
  web:
    image: busybox:1.36
    ports: ["8080:80", "127.0.0.1:9000:9000/udp", {target: 443, published: "8443", host_ip: "::1", protocol: tcp}]
    networks:
      front: {aliases: [www]}
      back:
  db:
    image: busybox:1.36
    container_name: main_db
    networks: [back]
  cache:
    image: busybox:1.36
  probe:
    image: busybox:1.36
    network_mode: none
networks:
  front:
    ipam: {config: [{subnet: 10.90.1.0/24}]}
  back:
    internal: true
    labels: [tier=data]
`;

describe('networks and ports', () => {
  it("map to Network documents and each container's networks, aliases and ports; the loader accepts them", async () => {
    const { dir, result, problems, notes } = await dirs.read({ 'compose.yaml': NETWORKS });
    expect(problems).toEqual([]);
    const docs = result.drafts.map((d) => d.value);
    const back = docs.find((d) => d.kind === 'Network' && d.metadata.name === 'back')!;
    expect(docs.filter((d) => d.kind === 'Network')).toEqual([
      { ...meta('Network', 'front'), spec: { subnet: '10.90.1.0/24' } },
      {
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Network',
        metadata: { name: 'back', labels: { tier: 'data' } },
        spec: { subnet: back.spec.subnet, internal: true },
      },
    ]);
    // No subnet in the file: a /24 of 10.89.0.0/16 from the name, said in a note.
    expect(back.spec.subnet).toMatch(/^10\.89\.([1-9]|[1-9]\d|1\d\d|2[0-5]\d)\.0\/24$/);
    expect(notes).toContainEqual(
      expect.stringMatching(new RegExp(`^compose\\.yaml:21:5: networks\\.back: berth gives it the subnet ${back.spec.subnet.replace(/\./g, '\\.')}`)),
    );
    const spec = (name: string) => docs.find((d) => d.kind === 'Container' && d.metadata.name === name)!.spec;
    expect(spec('web')).toMatchObject({
      networks: [{ name: 'front', aliases: ['www'] }, 'back'],
      ports: ['8080:80', '127.0.0.1:9000:9000/udp', '[::1]:8443:443/tcp'],
    });
    expect(spec('web').network).toBeUndefined();
    // Compose resolves a service by its own name too: an alias when its container is named otherwise.
    expect(spec('main-db').networks).toEqual([{ name: 'back', aliases: ['db'] }]);
    // No networks and no network_mode: Compose's default network, which is berth's default network.
    expect(spec('cache').networks).toEqual(['berth']);
    expect(spec('probe')).toMatchObject({ network: 'none' });
    expect(spec('probe').networks).toBeUndefined();

    const loaded = await checkManifests(dir, { validator: dirs.validator, revision: false });
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    const s = loaded.state!;
    const web = s.containers.find((c) => c.metadata.name === 'web')!;
    expect(web.spec.network).toBe('none');
    expect(web.spec.ports).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', range: 1 },
      { hostIp: '127.0.0.1', hostPort: 9000, containerPort: 9000, protocol: 'udp', range: 1 },
      { hostIp: '::1', hostPort: 8443, containerPort: 443, protocol: 'tcp', range: 1 },
    ]);
    expect(web.networkSpecs).toEqual({
      front: { driver: 'bridge', subnet: '10.90.1.0/24', internal: false },
      back: { driver: 'bridge', subnet: back.spec.subnet, internal: true },
    });
    expect(s.containers.find((c) => c.metadata.name === 'cache')!.networkSpecs).toEqual({
      berth: { driver: 'bridge', subnet: '10.89.0.0/24', internal: false },
    });
  });

  const TOP_LEVEL: Array<[string, string, unknown[]]> = [
    [
      "default with a subnet declares berth's default network",
      'default: {ipam: {config: [{subnet: 10.77.0.0/24}]}}',
      [{ ...meta('Network', 'berth'), spec: { subnet: '10.77.0.0/24' } }],
    ],
    ["default internal keeps berth's subnet", 'default: {internal: true}', [{ ...meta('Network', 'berth'), spec: { subnet: '10.89.0.0/24', internal: true } }]],
    ['default as it is declares nothing', 'default: {driver: bridge}', []],
    [
      'a name of its own',
      'default: {name: plant_net, ipam: {config: [{subnet: 10.78.0.0/24}]}}',
      [{ ...meta('Network', 'plant-net'), spec: { subnet: '10.78.0.0/24' } }],
    ],
    ['external: declared in another manifest', 'default: {external: true, name: shared}', []],
  ];
  for (const [what, network, expected] of TOP_LEVEL) {
    it(what, async () => {
      const { result, problems } = await dirs.read({ 'compose.yaml': `services:\n  app: {image: busybox:1.36}\nnetworks:\n  ${network}\n` });
      expect(problems).toEqual([]);
      expect(result.drafts.filter((d) => d.value.kind === 'Network').map((d) => d.value)).toEqual(expected);
      const joins = result.drafts.find((d) => d.value.kind === 'Container')!.value.spec.networks;
      expect(joins).toEqual([
        (expected[0] as { metadata?: { name: string } } | undefined)?.metadata?.name ?? (network.includes('shared') ? 'shared' : 'berth'),
      ]);
    });
  }

  it('network keys berth cannot honour are problems at their place', async () => {
    const text =
      'services:\n  app: {image: busybox:1.36}\nnetworks:\n  a: {driver: macvlan}\n  b: {enable_ipv6: true}\n  c: {ipam: {config: [{subnet: 10.79.0.0/24, gateway: 10.79.0.254}]}}\n  d: {driver_opts: {mtu: 1400}}\n';
    const { problems } = await dirs.read({ 'compose.yaml': text });
    expect(problems).toEqual([
      expect.stringMatching(/^compose\.yaml:4:7: networks\.a\.driver: berth cannot honour the driver "macvlan"/),
      expect.stringMatching(/^compose\.yaml:5:7: networks\.b\.enable_ipv6: berth networks are IPv4 only/),
      expect.stringMatching(/^compose\.yaml:6:46: networks\.c\.ipam\.config\[0\]\.gateway: berth cannot honour "gateway"/),
      expect.stringMatching(/^compose\.yaml:7:7: networks\.d\.driver_opts: berth cannot honour "driver_opts"/),
    ]);
  });
});
