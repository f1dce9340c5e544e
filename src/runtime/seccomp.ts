/**
 * The OCI `linux.seccomp` filter for one container, from berth's profile (seccomp-profile.ts), the
 * container's capabilities and the host's architecture. Conditions on capabilities are resolved
 * here, when the bundle is written, the way Docker resolves its profile's `includes.caps`: the filter
 * the runtime loads is plain rules.
 *
 * Calls in no list get ENOSYS (Podman's default): "this kernel does not have it", so libc falls back
 * (clone3 → clone) and a syscall newer than the profile is refused. Calls the profile names and
 * refuses get EPERM.
 */
import {
  ALLOWED_SYSCALLS,
  ARCH_SYSCALLS,
  CAPABILITY_SYSCALLS,
  CLONE_NAMESPACE_FLAGS,
  PERSONALITY_VALUES,
  REFUSED_SOCKET_FAMILIES,
  REFUSED_SYSCALLS,
} from './seccomp-profile.ts';

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface OciSeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls: OciSeccompRule[];
}

export const EPERM = 1;
export const ENOSYS = 38;

/** libseccomp architectures per Node `process.arch`: the native one and the compat ABIs it runs. */
const SECCOMP_ARCHES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  ia32: ['SCMP_ARCH_X86'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  arm: ['SCMP_ARCH_ARM'],
  riscv64: ['SCMP_ARCH_RISCV64'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  ppc64: ['SCMP_ARCH_PPC64LE'],
  mips64el: ['SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'],
  loong64: ['SCMP_ARCH_LOONGARCH64'],
};

/** The filter for a container with these capabilities (`CAP_…` names) on `arch` (Node's name). */
export function seccompFilter(capabilities: readonly string[], arch: string): OciSeccomp {
  const caps = new Set(capabilities);
  const allowed = new Set<string>(ALLOWED_SYSCALLS);
  for (const a of ARCH_SYSCALLS) if (a.arches.includes(arch)) a.names.forEach((n) => allowed.add(n));
  const gated = new Set<string>();
  for (const g of CAPABILITY_SYSCALLS) {
    g.names.forEach((n) => gated.add(n));
    if (g.caps.some((c) => caps.has(c))) g.names.forEach((n) => allowed.add(n));
  }
  const refused = new Set<string>(REFUSED_SYSCALLS);
  for (const n of gated) if (!allowed.has(n)) refused.add(n);

  const sysAdmin = caps.has('CAP_SYS_ADMIN');
  // s390 passes clone's flags in the second argument.
  const cloneFlagsArg = arch === 's390x' ? 1 : 0;
  const nsMask = CLONE_NAMESPACE_FLAGS.reduce((a, b) => a + b, 0);
  const rules: OciSeccompRule[] = [
    { names: [...allowed].sort(), action: 'SCMP_ACT_ALLOW' },
    { names: [...refused].filter((n) => !allowed.has(n)).sort(), action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
    ...PERSONALITY_VALUES.map((value) => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
    // Rules for one syscall are OR'ed: allowed for every family but the refused ones, which get EPERM.
    {
      names: ['socket'],
      action: 'SCMP_ACT_ALLOW',
      args: REFUSED_SOCKET_FAMILIES.map((value) => ({ index: 0, value, op: 'SCMP_CMP_NE' })),
    },
    ...REFUSED_SOCKET_FAMILIES.map((value) => ({
      names: ['socket'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: EPERM,
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
    })),
  ];
  if (sysAdmin) rules.push({ names: ['clone', 'clone3'], action: 'SCMP_ACT_ALLOW' });
  else {
    rules.push(
      // clone without any namespace flag; one EPERM rule per flag, so any of them refuses the call.
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: cloneFlagsArg, value: nsMask, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      ...CLONE_NAMESPACE_FLAGS.map((flag) => ({
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: cloneFlagsArg, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
      // clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes libc fall back to clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    );
  }
  const architectures = SECCOMP_ARCHES[arch];
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: ENOSYS,
    ...(architectures ? { architectures } : {}),
    syscalls: rules,
  };
}
