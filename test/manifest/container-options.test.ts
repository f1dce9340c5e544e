/** The Container fields of issue 11 (devices, capabilities, init, hostname…): loading, validation with places, spec hash. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadManifests, parseManifestSources } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { describeSpecChanges } from '../../src/manifest/spec-diff.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const DIGEST = `sha256:${'a'.repeat(64)}`;
const VOLUME = 'apiVersion: berth.dev/v1alpha1\nkind: Volume\nmetadata: {name: data}\n';
const container = (name: string, specLines: string[], meta = '') =>
  `---\napiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: ${name}${meta}}\nspec:\n${specLines.map((l) => `  ${l}`).join('\n')}\n`;
const load = (text: string) => parseManifestSources([{ file: 'c.yaml', text }], validator);
const one = (lines: string[]) => {
  const r = load(container('app', ['image: 127.0.0.1:5000/busybox:1.36', ...lines]));
  expect(r.problems.map(formatProblem)).toEqual([]);
  return r.state!.containers[0]!;
};
const problems = (lines: string[]) => load(container('app', ['image: 127.0.0.1:5000/busybox:1.36', ...lines])).problems.map(formatProblem);

describe('container options: loading', () => {
  it('reads every field with Compose names, normalised', () => {
    const c = one([
      'devices:',
      '  - /dev/ttyUSB0',
      '  - {path: /dev/gpiochip0, target: /dev/gpio, permissions: wr}',
      '  - /dev/video0:/dev/cam:r',
      'deviceCgroupRules: ["c 188:* rmw"]',
      'capAdd: [NET_ADMIN, cap_sys_time]',
      'capDrop: [ALL]',
      'privileged: false',
      'init: true',
      'hostname: sensor-7',
      'extraHosts: ["broker.local:192.168.1.10", "v6host:::1"]',
      'dns: ["192.168.1.1"]',
      'network: none',
      'sysctls: {net.ipv4.ip_unprivileged_port_start: 0, kernel.shmmax: "1000000"}',
      'ulimits: {nofile: {soft: 4096, hard: 8192}, core: 0}',
      'shmSize: 128Mi',
      'groupAdd: [dialout, 20]',
      'labels: {com.example.team: field}',
      'tty: true',
    ]);
    expect(c.spec).toMatchObject({
      devices: [
        { path: '/dev/ttyUSB0', target: '/dev/ttyUSB0', permissions: 'rwm' },
        { path: '/dev/gpiochip0', target: '/dev/gpio', permissions: 'rw' },
        { path: '/dev/video0', target: '/dev/cam', permissions: 'r' },
      ],
      deviceCgroupRules: ['c 188:* rmw'],
      capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_TIME'],
      capDrop: ['ALL'],
      init: true,
      hostname: 'sensor-7',
      extraHosts: ['broker.local:192.168.1.10', 'v6host:::1'],
      dns: ['192.168.1.1'],
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shmmax': '1000000' },
      ulimits: { nofile: { soft: 4096, hard: 8192 }, core: { soft: 0, hard: 0 } },
      shmSizeBytes: 128 * 1024 * 1024,
      groupAdd: ['dialout', '20'],
      labels: { 'com.example.team': 'field' },
      tty: true,
    });
    expect(c.spec.privileged).toBeUndefined();
  });

  it('shapes the schema refuses, each at its file:line:col', () => {
    expect(
      problems([
        'devices: ["dev/c", {path: /dev/b, mode: rw}]', //      line 7
        'deviceCgroupRules: ["c 188 rmw"]', //                   line 8
        'ulimits: {nofiles: 3}', //                              line 9
        'shmSize: lots', //                                       line 10
        'privileged: yes', //                                     line 11
        'hostname: "-bad"', //                                    line 12
        'capAdd: ["NET ADMIN"]', //                               line 13
      ]),
    ).toEqual([
      'c.yaml:7:13: spec.devices[0]: "dev/c" is not valid (a host device path, the same inside with rwm access (/dev/ttyUSB0), or host:container[:permissions])',
      'c.yaml:7:37: spec.devices[1]: unknown field "mode" (allowed: path, target, permissions)',
      'c.yaml:8:23: spec.deviceCgroupRules[0]: "c 188 rmw" is not valid (a device cgroup rule: type (c char, b block, a all), major:minor (* for any), access (r, w, m), e.g. c 188:* rmw)',
      'c.yaml:9:13: spec.ulimits: unknown field "nofiles"; did you mean "nofile"?',
      'c.yaml:10:12: spec.shmSize: "lots" is not a size in bytes: an integer, or a number with a unit: 512, 64Mi, 1.5G (k M G T = powers of 1000, Ki Mi Gi Ti = powers of 1024)',
      'c.yaml:11:15: spec.privileged: must be a boolean (got "yes")',
      'c.yaml:12:13: spec.hostname: "-bad" is not valid (the container\'s hostname (it gets a UTS namespace of its own, also with network: host))',
      'c.yaml:13:12: spec.capAdd[0]: "NET ADMIN" is not valid (a Linux capability, with or without the CAP_ prefix (NET_ADMIN, CAP_SYS_TIME), or ALL)',
    ]);
  });

  it('what the schema cannot say, each at its file:line:col', () => {
    expect(
      problems([
        'capAdd: [NET_ADMN, SYS_TIME]', //                       line 7
        'capDrop: [SYS_TIME]', //                                 line 8
        'devices: [/dev/a, {path: /dev/b, target: /dev/a}, "/dev/d:/dev/e:rwx", "/dev/f:g"]', // line 9
        'extraHosts: ["broker:999.1.1.1"]', //                   line 10
        'dns: [resolver.local]', //                               line 11
        'sysctls: {net.ipv4.ip_forward: 1, vm.swappiness: 10}', // line 12
        'ulimits: {nofile: {soft: 10, hard: 5}}', //              line 13
      ]),
    ).toEqual([
      'c.yaml:7:12: spec.capAdd[0]: "NET_ADMN" is not a Linux capability (e.g. NET_ADMIN, SYS_TIME, or ALL)',
      'c.yaml:7:22: spec.capAdd: CAP_SYS_TIME is also in capDrop',
      'c.yaml:9:21: spec.devices[1]: /dev/a is already the target of devices[0]',
      'c.yaml:9:53: spec.devices[2]: permissions "rwx" must be some of r, w, m (read, write, mknod)',
      'c.yaml:9:74: spec.devices[3]: the target "g" must be an absolute path',
      'c.yaml:10:16: spec.extraHosts[0]: "999.1.1.1" is not an IP address (write host:ip, e.g. broker.local:192.168.1.10)',
      'c.yaml:11:9: spec.dns[0]: "resolver.local" is not an IP address',
      "c.yaml:12:34: spec.sysctls: net.ipv4.ip_forward would change the host's network settings (network: host); it needs network: none",
      'c.yaml:12:52: spec.sysctls: vm.swappiness is not namespaced: setting it would change the host (allowed: net.*, fs.mqueue.*, kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced)',
      'c.yaml:13:28: spec.ulimits.nofile: soft limit 10 is above the hard limit 5',
    ]);
  });
});

describe('container options: spec hash', () => {
  // Hashes computed by berth before these fields existed (commit 69d597c): an upgrade must not
  // recreate a container whose manifest does not use them.
  const OLD = `${VOLUME}${container(
    'web',
    [
      'image: 127.0.0.1:5000/busybox:1.36',
      'command: [/bin/httpd]',
      'args: ["-f", "-p", "8080"]',
      'env: {A: "1", B: two}',
      'user: "1000:1000"',
      'workingDir: /www',
      'mounts:',
      '  - {type: volume, name: data, target: /data}',
      '  - {type: tmpfs, target: /tmp, size: 16Mi}',
      'resources: {memory: 64Mi, cpus: 0.5, pids: 100}',
      'readOnlyRootfs: true',
      'stopSignal: INT',
      'stopGracePeriod: 3s',
    ],
    ', labels: {app: web}',
  )}${container('bare', ['image: 127.0.0.1:5000/busybox:1.36'])}`;

  it('a manifest without the new fields hashes exactly as before', () => {
    const r = load(OLD);
    expect(r.problems).toEqual([]);
    const [web, bare] = r.state!.containers;
    expect(containerSpecHash(web!, DIGEST)).toBe('sha256:5d7f22bbecc3094dad99f52d94397d8c424c88c4c9eb8a86bb96fadc34364cfb');
    expect(containerSpecHash(bare!, DIGEST)).toBe('sha256:8603d43c28a983db25d9e081e5df32750304dcb0f74df44c42f29796ded52f5b');
  });

  it('defaults written out change nothing; order that means nothing changes nothing', () => {
    const base = containerSpecHash(one([]), DIGEST);
    expect(containerSpecHash(one(['tty: false', 'privileged: false', 'init: false', 'shmSize: 64Mi', 'devices: []', 'capAdd: []', 'labels: {}']), DIGEST)).toBe(
      base,
    );
    const a = containerSpecHash(one(['devices: [/dev/a, /dev/b]', 'capAdd: [NET_ADMIN, SYS_TIME]', 'groupAdd: [a, b]']), DIGEST);
    const b = containerSpecHash(one(['devices: [/dev/b, "/dev/a:/dev/a:rwm"]', 'capAdd: [CAP_SYS_TIME, net_admin]', 'groupAdd: [b, a]']), DIGEST);
    expect(b).toBe(a);
  });

  it('a changed device list (or any other option) changes the hash and says what changed', () => {
    const before = one(['devices: [/dev/ttyUSB0]']);
    for (const change of [
      ['devices: [/dev/ttyUSB1]'],
      ['devices: ["/dev/ttyUSB0:/dev/ttyUSB0:r"]'],
      ['devices: [/dev/ttyUSB0]', 'init: true'],
      ['devices: [/dev/ttyUSB0]', 'capAdd: [NET_ADMIN]'],
      ['devices: [/dev/ttyUSB0]', 'labels: {a: b}'],
      ['devices: [/dev/ttyUSB0]', 'shmSize: 1Mi'],
      ['devices: [/dev/ttyUSB0]', 'dns: [1.1.1.1]'],
      ['devices: [/dev/ttyUSB0]', 'hostname: h'],
      ['devices: [/dev/ttyUSB0]', 'privileged: true'],
    ]) {
      expect(containerSpecHash(one(change), DIGEST), change.join(' ')).not.toBe(containerSpecHash(before, DIGEST));
    }
    expect(describeSpecChanges(normaliseContainerSpec(before), normaliseContainerSpec(one(['devices: [/dev/ttyUSB1]', 'init: true'])))).toEqual([
      'devices changed',
      'init changed',
    ]);
  });
});

describe('examples', () => {
  it('the sensor pipeline passes its serial adapter as a device, and the kiosk its GPU: no /dev bind mounts', async () => {
    const examples = new URL('../../examples/', import.meta.url).pathname;
    const sensors = await loadManifests(`${examples}sensor-pipeline`, { validator, revision: false });
    const collector = sensors.containers.find((c) => c.metadata.name === 'collector')!;
    expect(collector.spec.devices).toEqual([{ path: '/dev/ttyUSB0', target: '/dev/ttyUSB0', permissions: 'rwm' }]);
    const kiosk = await loadManifests(`${examples}kiosk`, { validator, revision: false });
    for (const c of [...sensors.containers, ...kiosk.containers]) {
      expect(
        c.spec.mounts.filter((m) => m.type === 'bind' && m.source.startsWith('/dev')),
        c.metadata.name,
      ).toEqual([]);
    }
  });
});

describe('privileged', () => {
  it('berth validate accepts it and warns at the document; berth plan warns too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-priv-'));
    try {
      await writeFile(join(dir, 'p.yaml'), container('probe', ['image: 127.0.0.1:5000/busybox:1.36', 'privileged: true']).slice(4));
      const bin = new URL('../../bin/berth', import.meta.url).pathname;
      const r = spawnSync(bin, ['--config', join(dir, 'none.toml'), 'validate', '-f', dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(
        `${join(dir, 'p.yaml')}:1:1: warning: container probe is privileged: every capability and host device, no seccomp filter, /sys writable`,
      );
      // plan flags it on the step that would create it.
      const plan = spawnSync(bin, ['--config', join(dir, 'none.toml'), '--root', join(dir, 'root'), 'plan', '-f', join(dir, 'p.yaml')], { encoding: 'utf8' });
      expect(plan.status, plan.stderr).toBe(2);
      expect(plan.stdout).toContain('probe: create');
      expect(plan.stderr).toContain(`${join(dir, 'p.yaml')}:1:1: warning: container probe is privileged`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
