import { describe, expect, it } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { CAPABILITIES } from '../../src/oci/capabilities.ts';
import { etcFiles } from '../../src/runtime/etc-files.ts';
import { deviceNumbers, parseDeviceCgroupRule } from '../../src/runtime/devices.ts';
import { buildSpec, DEFAULT_CAPABILITIES, type SpecInput } from '../../src/runtime/spec.ts';
import { containerCapabilities } from '../../src/runtime/spec-options.ts';
import { spec } from './helpers.ts';

const input = (s: Parameters<typeof spec>[0] = {}, host: Partial<SpecInput> = {}): SpecInput => ({
  name: 'web',
  spec: spec(s),
  image: { config: { Cmd: ['/app'] } },
  passwd: 'root:x:0:0:root:/root:/bin/sh\n',
  group: 'root:x:0:\ndialout:x:20:\n',
  root: '/var/lib/berth',
  ...host,
});

describe('containerCapabilities (Docker rules)', () => {
  it('adds and drops on Docker defaults; drop ALL then add; add ALL; privileged; ALL means what berth holds', () => {
    expect(containerCapabilities(spec({ capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_CHOWN'] }))).toEqual([
      ...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN'),
      'CAP_NET_ADMIN',
    ]);
    expect(containerCapabilities(spec({ capDrop: ['ALL'], capAdd: ['CAP_KILL'] }))).toEqual(['CAP_KILL']);
    expect(containerCapabilities(spec({ capAdd: ['ALL'], capDrop: ['CAP_SYS_ADMIN'] }))).toEqual(CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN'));
    expect(containerCapabilities(spec({ privileged: true }), ['CAP_CHOWN', 'CAP_SYS_ADMIN'])).toEqual(['CAP_CHOWN', 'CAP_SYS_ADMIN']);
  });
});

describe('buildSpec with options', () => {
  it('capabilities reach the process and the seccomp filter', () => {
    const s = buildSpec(input({ capAdd: ['CAP_SYS_ADMIN'] }));
    expect(s.process.capabilities.effective).toContain('CAP_SYS_ADMIN');
    expect(s.linux.seccomp!.syscalls.find((r) => r.action === 'SCMP_ACT_ALLOW' && r.names.includes('mount'))).toBeDefined();
  });
  it('privileged: every device allowed and created, no seccomp, no masked paths, /sys writable', () => {
    const dev = { path: '/dev/ttyS0', type: 'c' as const, major: 4, minor: 64, fileMode: 0o660, uid: 0, gid: 20, access: 'rwm' };
    const s = buildSpec(input({ privileged: true }, { hostDevices: [dev] }));
    expect(s.linux.seccomp).toBeUndefined();
    expect(s.linux.maskedPaths).toEqual([]);
    expect(s.linux.resources.devices[0]).toEqual({ allow: true, access: 'rwm' });
    expect(s.linux.devices).toEqual([{ path: '/dev/ttyS0', type: 'c', major: 4, minor: 64, fileMode: 0o660, uid: 0, gid: 20 }]);
    expect(s.mounts.find((m) => m.destination === '/sys')!.options).toContain('rw');
  });
  it('devices and device cgroup rules: nodes to create, allow entries after the deny-all', () => {
    const dev = { path: '/dev/gpio', type: 'c' as const, major: 254, minor: 0, fileMode: 0o600, uid: 0, gid: 0, access: 'rw' };
    const s = buildSpec(input({ deviceCgroupRules: ['c 188:* rmw'] }, { devices: [dev] }));
    expect(s.linux.resources.devices).toEqual([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 254, minor: 0, access: 'rw' },
      { allow: true, type: 'c', major: 188, access: 'rmw' },
    ]);
  });
  it('init: the host binary at /dev/init in front of the command; FailedPrecondition without one', () => {
    const s = buildSpec(input({ init: true }, { initBinary: '/usr/bin/tini-static' }));
    expect(s.process.args).toEqual(['/dev/init', '--', '/app']);
    expect(s.mounts).toContainEqual({ destination: '/dev/init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro'] });
    let err: unknown;
    try {
      buildSpec(input({ init: true }));
    } catch (e) {
      err = e;
    }
    expect(isKind(err, 'FailedPrecondition')).toBe(true);
  });
  it('hostname gets a UTS namespace even with network host; written /etc files replace the host ones; a user mount wins', () => {
    const paths = { hostname: '/c/hostname', hosts: '/c/hosts', resolvConf: '/c/resolv.conf' };
    const s = buildSpec(input({ hostname: 'sensor-7' }, { etcFilePaths: paths, hostNetworkFiles: { hosts: '/etc/hosts', resolvConf: '/etc/resolv.conf' } }));
    expect(s.hostname).toBe('sensor-7');
    expect(s.linux.namespaces.map((n) => n.type)).toContain('uts');
    expect(s.process.env).toContain('HOSTNAME=sensor-7');
    expect(s.mounts.filter((m) => m.destination === '/etc/hosts')).toEqual([
      { destination: '/etc/hosts', type: 'bind', source: '/c/hosts', options: ['rbind', 'ro'] },
    ]);
    const own = buildSpec(input({ mounts: [{ type: 'bind', source: '/mine', target: '/etc/hosts', readOnly: true }] }, { etcFilePaths: paths }));
    expect(own.mounts.filter((m) => m.destination === '/etc/hosts').map((m) => m.source)).toEqual(['/mine']);
  });
  it('sysctls, ulimits (nofile replaces the default), shm size, groupAdd, labels', () => {
    const s = buildSpec(
      input({
        sysctls: { 'kernel.shmmni': '100' },
        ulimits: { nofile: { soft: 10, hard: 20 }, nproc: { soft: 5, hard: 5 } },
        shmSizeBytes: 1 << 20,
        groupAdd: ['dialout', '99'],
        labels: { team: 'field' },
      }),
    );
    expect(s.linux.sysctl).toEqual({ 'kernel.shmmni': '100' });
    expect(s.process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 10, hard: 20 },
      { type: 'RLIMIT_NPROC', soft: 5, hard: 5 },
    ]);
    expect(s.mounts.find((m) => m.destination === '/dev/shm')!.options).toContain(`size=${1 << 20}`);
    expect(s.process.user.additionalGids).toEqual([20, 99]);
    expect(s.annotations).toEqual({ team: 'field' });
    expect(() => buildSpec(input({ groupAdd: ['wheel'] }))).toThrow(/groupAdd: group "wheel" does not exist/);
  });
  it('what berth cannot hold it cannot give: FailedPrecondition at create, not a failing start', () => {
    const refused = (s: Parameters<typeof spec>[0], host: Partial<SpecInput>) => {
      try {
        buildSpec(input(s, host));
      } catch (e) {
        return e;
      }
    };
    const cap = refused({ capAdd: ['CAP_SYS_RESOURCE'] }, { availableCapabilities: DEFAULT_CAPABILITIES });
    expect(isKind(cap, 'FailedPrecondition')).toBe(true);
    expect((cap as Error).message).toBe('container web: capAdd: berth does not hold CAP_SYS_RESOURCE on this host, so it cannot give it');
    const nofile = refused({ ulimits: { nofile: { soft: 1024, hard: 1 << 20 } } }, { nofileCeiling: 20_000 });
    expect(isKind(nofile, 'FailedPrecondition')).toBe(true);
    expect(buildSpec(input({ ulimits: { nofile: { soft: 1024, hard: 20_000 } } }, { nofileCeiling: 20_000 })).process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 20_000 },
    ]);
  });
});

describe('etcFiles, devices', () => {
  it('hosts: the host file plus extras with network host, localhost plus extras otherwise; resolv.conf keeps search/options', () => {
    const host = { hosts: '127.0.0.1 localhost\n10.0.0.1 gw\n', resolvConf: 'search lan\nnameserver 10.0.0.1\noptions ndots:2\n' };
    const f = etcFiles(spec({ extraHosts: ['broker:192.168.1.10', 'v6:::1'], dns: ['1.1.1.1'], hostname: 'h' }), host);
    expect(f.hosts).toBe('127.0.0.1 localhost\n10.0.0.1 gw\n# extraHosts (berth)\n192.168.1.10\tbroker\n::1\tv6\n');
    expect(f.resolvConf).toBe('search lan\noptions ndots:2\nnameserver 1.1.1.1\n');
    expect(f.hostname).toBe('h\n');
    expect(etcFiles(spec({ network: 'none', extraHosts: ['b:10.1.1.1'] }), host).hosts).toContain('127.0.0.1\tlocalhost\n');
    expect(etcFiles(spec(), host)).toEqual({});
  });
  it('device numbers and cgroup rules', () => {
    expect(deviceNumbers(0x105)).toEqual({ major: 1, minor: 5 });
    expect(deviceNumbers((259 << 8) | 3)).toEqual({ major: 259, minor: 3 });
    expect(parseDeviceCgroupRule('a *:* rwm')).toEqual({ allow: true, type: 'a', access: 'rwm' });
  });
});
