import { describe, expect, it } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { buildSpec, DEFAULT_CAPABILITIES, DEFAULT_PATH, executableCandidates, resolveProcess, resolveUser, type SpecInput } from '../../src/runtime/spec.ts';
import { spec } from './helpers.ts';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nvideo:x:44:app,other\n';

const input = (s: Parameters<typeof spec>[0] = {}, img: Record<string, unknown> = {}): SpecInput => ({
  name: 'web',
  spec: spec(s),
  image: { config: { Entrypoint: ['/entry'], Cmd: ['--default'], Env: ['PATH=/usr/bin:/bin', 'A=image'], WorkingDir: '/app', ...img } },
  passwd: PASSWD,
  group: GROUP,
  root: '/var/lib/berth',
});

describe('buildSpec: Docker merge rules', () => {
  it('image Entrypoint + Cmd when the spec sets neither', () => {
    expect(resolveProcess(input()).args).toEqual(['/entry', '--default']);
  });
  it('args replaces Cmd, keeps Entrypoint', () => {
    expect(resolveProcess(input({ args: ['-x'] })).args).toEqual(['/entry', '-x']);
  });
  it('command replaces Entrypoint and drops the image Cmd', () => {
    expect(resolveProcess(input({ command: ['/bin/httpd'] })).args).toEqual(['/bin/httpd']);
    expect(resolveProcess(input({ command: ['/bin/httpd'], args: ['-f'] })).args).toEqual(['/bin/httpd', '-f']);
  });
  it('no command at all is an error', () => {
    expect(() => resolveProcess(input({}, { Entrypoint: null, Cmd: null }))).toThrow(/no command/);
  });
  it('env: image first, spec overrides, HOME from passwd, PATH default only when absent', () => {
    const p = resolveProcess(input({ env: { A: 'spec', B: 'b' }, user: 'app' }));
    expect(p.env).toEqual(['PATH=/usr/bin:/bin', 'A=spec', 'B=b', 'HOME=/home/app']);
    expect(resolveProcess(input({}, { Env: [] })).env[0]).toBe(`PATH=${DEFAULT_PATH}`);
  });
  it('workingDir: spec, else image, else /', () => {
    expect(resolveProcess(input({ workingDir: '/www' })).cwd).toBe('/www');
    expect(resolveProcess(input()).cwd).toBe('/app');
    expect(resolveProcess(input({}, { WorkingDir: '' })).cwd).toBe('/');
  });
  it('security defaults: Docker caps, no-new-privileges, masked and read-only paths, /sys ro', () => {
    const s = buildSpec(input());
    expect(s.process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect(s.process.capabilities.bounding).not.toContain('CAP_SYS_ADMIN');
    expect(s.process.capabilities.inheritable).toEqual([]);
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.linux.maskedPaths).toContain('/proc/kcore');
    expect(s.linux.readonlyPaths).toContain('/proc/sys');
    expect(s.mounts.find((m) => m.destination === '/sys')!.options).toContain('ro');
    for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue']) expect(s.mounts.some((m) => m.destination === d)).toBe(true);
  });
  it('seccomp: an allowlist; unknown calls ENOSYS, refused ones EPERM, namespace flags of clone EPERM, clone3 ENOSYS', () => {
    const sc = buildSpec(input()).linux.seccomp!;
    expect(sc).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 });
    const refused = sc.syscalls.find((r) => r.action === 'SCMP_ACT_ERRNO' && r.errnoRet === 1 && !r.args)!;
    expect(refused.names).toEqual(
      expect.arrayContaining(['mount', 'unshare', 'setns', 'keyctl', 'bpf', 'kexec_load', 'init_module', 'io_uring_setup', 'mbind']),
    );
    expect(sc.syscalls.filter((r) => r.names[0] === 'clone' && r.action === 'SCMP_ACT_ERRNO').map((r) => r.args![0]!.value)).toContain(0x10000000);
    expect(sc.syscalls.find((r) => r.names[0] === 'clone3')!.errnoRet).toBe(38);
  });
  it('limits: RLIMIT_NOFILE 1024:524288 (hard lowered to the ceiling berth can set), pids 2048 unless resources.pids or the runtime default', () => {
    expect(buildSpec(input()).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 524_288 }]);
    expect(buildSpec({ ...input(), nofileCeiling: 20_000 }).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 20_000 }]);
    expect(buildSpec({ ...input(), nofileCeiling: 512 }).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 512, hard: 512 }]);
    expect(buildSpec(input()).linux.resources.pids).toEqual({ limit: 2048 });
    expect(buildSpec({ ...input(), defaultPidsLimit: 100 }).linux.resources.pids).toEqual({ limit: 100 });
    expect(buildSpec({ ...input(), defaultPidsLimit: 0 }).linux.resources.pids).toBeUndefined();
    expect(buildSpec({ ...input({ resources: { pids: 7 } }), defaultPidsLimit: 100 }).linux.resources.pids).toEqual({ limit: 7 });
  });
  it('network none gets its own network and UTS namespaces, hostname = name', () => {
    const s = buildSpec(input({ network: 'none' }));
    expect(s.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'mount', 'uts', 'network']);
    expect(s.hostname).toBe('web');
  });
  it("network host shares the host's network and hostname and binds its resolv.conf and hosts read-only", () => {
    const s = buildSpec({ ...input(), hostNetworkFiles: { resolvConf: '/etc/resolv.conf', hosts: '/etc/hosts' } });
    expect(s.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'mount']);
    expect(s.hostname).toBeUndefined();
    expect(s.mounts.find((m) => m.destination === '/etc/resolv.conf')).toEqual({
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: '/etc/resolv.conf',
      options: ['rbind', 'ro'],
    });
    expect(s.mounts.some((m) => m.destination === '/etc/hosts')).toBe(true);
    const none = buildSpec({ ...input({ network: 'none' }), hostNetworkFiles: { resolvConf: '/etc/resolv.conf' } });
    expect(none.mounts.some((m) => m.destination === '/etc/resolv.conf')).toBe(false);
  });
  it('resources: memory (no swap on top), cpu quota from cpus, pids', () => {
    const s = buildSpec(input({ resources: { memoryBytes: 64 << 20, cpus: 0.5, pids: 128 } }));
    expect(s.linux.resources.memory).toEqual({ limit: 64 << 20, swap: 64 << 20 });
    expect(s.linux.resources.cpu).toEqual({ quota: 50_000, period: 100_000 });
    expect(s.linux.resources.pids).toEqual({ limit: 128 });
    expect(s.linux.cgroupsPath).toBe('/berth/web');
  });
  it('mounts: named volume under <root>/volumes, bind ro, tmpfs with size; readOnlyRootfs', () => {
    const s = buildSpec(
      input({
        readOnlyRootfs: true,
        mounts: [
          { type: 'volume', name: 'web-data', target: '/data', readOnly: false },
          { type: 'bind', source: '/etc/ssl/certs', target: '/etc/ssl/certs', readOnly: true },
          { type: 'tmpfs', target: '/tmp', sizeBytes: 16 << 20 },
        ],
      }),
    );
    expect(s.root.readonly).toBe(true);
    const user = s.mounts.slice(-3);
    expect(user[0]).toEqual({ destination: '/data', type: 'bind', source: '/var/lib/berth/volumes/web-data', options: ['rbind', 'rw', 'nosuid', 'nodev'] });
    expect(user[1]).toEqual({ destination: '/etc/ssl/certs', type: 'bind', source: '/etc/ssl/certs', options: ['rbind', 'ro'] });
    expect(user[2]!.options).toContain(`size=${16 << 20}`);
  });
  it('is pure: same input, same output', () => {
    expect(JSON.stringify(buildSpec(input({ env: { X: '1' } })))).toBe(JSON.stringify(buildSpec(input({ env: { X: '1' } }))));
  });
});

describe('resolveUser', () => {
  it.each([
    ['app', { uid: 1000, gid: 1000, additionalGids: [50, 44] }],
    ['1000', { uid: 1000, gid: 1000, additionalGids: [50, 44] }],
    ['1000:1000', { uid: 1000, gid: 1000, additionalGids: [] }],
    ['app:staff', { uid: 1000, gid: 50, additionalGids: [] }],
    ['4242', { uid: 4242, gid: 0, additionalGids: [] }],
    ['0', { uid: 0, gid: 0, additionalGids: [] }],
  ])('%s', (u, want) => {
    expect(resolveUser(u, PASSWD, GROUP)).toMatchObject(want);
  });
  it('unknown names are InvalidArgument errors naming the user', () => {
    let err: unknown;
    try {
      resolveUser('ghost', PASSWD, GROUP, 'web');
    } catch (e) {
      err = e;
    }
    expect(isKind(err, 'InvalidArgument')).toBe(true);
    expect((err as Error).message).toBe(`container web: user "ghost" does not exist in the image's /etc/passwd`);
    expect(() => resolveUser('app', undefined, undefined)).toThrow(/has no \/etc\/passwd/);
    expect(() => resolveUser('app:nogroup', PASSWD, GROUP)).toThrow(/group "nogroup" does not exist/);
  });
});

describe('executableCandidates', () => {
  it('searches PATH for a bare name, resolves relative paths against cwd', () => {
    expect(executableCandidates({ args: ['httpd'], env: ['PATH=/usr/bin:/bin'], cwd: '/', uid: 0, gid: 0, additionalGids: [] })).toEqual([
      '/usr/bin/httpd',
      '/bin/httpd',
    ]);
    expect(executableCandidates({ args: ['./run.sh'], env: [], cwd: '/app', uid: 0, gid: 0, additionalGids: [] })).toEqual(['/app/run.sh']);
  });
});
