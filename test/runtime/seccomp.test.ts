import { describe, expect, it } from 'vitest';
import { seccompFilter } from '../../src/runtime/seccomp.ts';
import { ALLOWED_SYSCALLS, CAPABILITY_SYSCALLS, REFUSED_SYSCALLS } from '../../src/runtime/seccomp-profile.ts';
import { DEFAULT_CAPABILITIES } from '../../src/runtime/spec.ts';

const plain = (f: ReturnType<typeof seccompFilter>, action: string, errnoRet?: number) =>
  f.syscalls.find((r) => !r.args && r.action === action && r.errnoRet === errnoRet && r.names.length > 2)?.names ?? [];

describe('seccompFilter', () => {
  it('every call is in at most one plain rule (libseccomp refuses conflicting rules)', () => {
    for (const caps of [DEFAULT_CAPABILITIES, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_NICE'], []]) {
      const f = seccompFilter(caps, 'x64');
      const allowed = plain(f, 'SCMP_ACT_ALLOW');
      const refused = plain(f, 'SCMP_ACT_ERRNO', 1);
      expect(allowed.filter((n) => refused.includes(n))).toEqual([]);
      for (const special of ['clone', 'clone3', 'socket', 'personality']) expect(refused).not.toContain(special);
    }
  });

  it('calls governed by a capability are allowed with it and refused with EPERM without it, as Docker does', () => {
    const base = seccompFilter(DEFAULT_CAPABILITIES, 'x64');
    expect(plain(base, 'SCMP_ACT_ERRNO', 1)).toEqual(expect.arrayContaining(['mount', 'fspick', 'mount_setattr', 'mbind', 'settimeofday', 'reboot']));
    expect(plain(base, 'SCMP_ACT_ALLOW')).toContain('chroot'); // CAP_SYS_CHROOT is a default capability
    const admin = seccompFilter([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_TIME'], 'x64');
    expect(plain(admin, 'SCMP_ACT_ALLOW')).toEqual(expect.arrayContaining(['mount', 'fspick', 'unshare', 'setns', 'settimeofday']));
    expect(plain(admin, 'SCMP_ACT_ERRNO', 1)).toContain('mbind');
    // With CAP_SYS_ADMIN clone may make namespaces and clone3 is allowed (its flags cannot be checked).
    expect(admin.syscalls.filter((r) => r.names.includes('clone3')).map((r) => r.action)).toEqual(['SCMP_ACT_ALLOW']);
    // bpf: CAP_SYS_ADMIN or CAP_BPF.
    expect(plain(seccompFilter(['CAP_BPF'], 'x64'), 'SCMP_ACT_ALLOW')).toContain('bpf');
  });

  it('io_uring and keyrings are refused whatever the capabilities', () => {
    const all = seccompFilter(
      CAPABILITY_SYSCALLS.flatMap((g) => g.caps),
      'x64',
    );
    expect(plain(all, 'SCMP_ACT_ERRNO', 1)).toEqual(expect.arrayContaining(['io_uring_setup', 'io_uring_enter', 'io_uring_register', 'keyctl']));
    expect(ALLOWED_SYSCALLS.filter((n) => REFUSED_SYSCALLS.includes(n))).toEqual([]);
  });

  it('architectures: the native ABI and its compat ABIs; arch-only calls on their arch only', () => {
    expect(seccompFilter([], 'x64').architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(seccompFilter([], 'arm64').architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(plain(seccompFilter([], 'x64'), 'SCMP_ACT_ALLOW')).toContain('arch_prctl');
    expect(plain(seccompFilter([], 'arm64'), 'SCMP_ACT_ALLOW')).not.toContain('arch_prctl');
    expect(plain(seccompFilter([], 'arm64'), 'SCMP_ACT_ALLOW')).toContain('set_tls');
    // s390 passes clone's flags second.
    expect(seccompFilter([], 's390x').syscalls.find((r) => r.names[0] === 'clone')!.args![0]!.index).toBe(1);
  });
});
