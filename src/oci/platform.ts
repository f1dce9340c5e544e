/**
 * Platforms (`os/arch[/variant]`), parsed, normalised and matched as containerd's `platforms`
 * package does: `amd64` means the host OS on amd64, `aarch64` is `arm64`, `arm` without a variant
 * is `arm/v7`, and a host accepts compatible older variants (arm64 runs arm/v8…v5, arm/v7 runs
 * v6 and v5, amd64/v3 runs v2 and v1), best first. Index entries for `unknown/unknown` (build
 * attestations) are never chosen.
 */
import { invalidArgument, notFound } from '../errors.ts';
import type { Descriptor, Platform } from './types.ts';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const KNOWN_OS = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'windows',
  'zos',
  'wasip1',
]);
const KNOWN_ARCH = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'ppc64',
  'ppc64le',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
]);

/** Normalise arch and variant the way containerd does. */
export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8') variant = undefined;
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  return variant ? { os, architecture: arch, variant } : { os, architecture: arch };
}

/** The platform berth runs on. */
export function hostPlatform(): PlatformSpec {
  const archMap: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
    mips: 'mips',
    mipsel: 'mipsle',
  };
  const arch = archMap[process.arch] ?? process.arch;
  let variant: string | undefined;
  if (arch === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    variant = v ? `v${String(v)}` : 'v7';
  }
  return normalizePlatform({ os: process.platform === 'win32' ? 'windows' : process.platform, architecture: arch, variant });
}

/**
 * Parse `os`, `os/arch`, `os/arch/variant`, or an architecture alone (meaning the host's OS),
 * e.g. `linux/arm64`, `linux/arm/v7`, `arm64`. Errors show the specifier.
 */
export function parsePlatform(spec: string): PlatformSpec {
  const bad = (why: string): never => {
    throw invalidArgument(`invalid platform "${spec}": ${why} (examples: linux/amd64, linux/arm64, linux/arm/v7)`);
  };
  if (!/^[A-Za-z0-9_./-]+$/.test(spec)) bad('unexpected characters');
  const parts = spec.split('/');
  if (parts.some((p) => p === '')) bad('empty component');
  if (parts.length > 3) bad('too many components');
  const host = hostPlatform();
  if (parts.length === 1) {
    const p = parts[0]!.toLowerCase();
    if (KNOWN_OS.has(p)) {
      // containerd: an OS alone means that OS with the host's architecture.
      return normalizePlatform({ os: p, architecture: host.architecture, variant: host.variant });
    }
    const n = normalizePlatform({ os: host.os, architecture: p });
    if (!KNOWN_ARCH.has(n.architecture)) bad(`unknown operating system or architecture "${parts[0]}"`);
    return n;
  }
  const n = normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
  if (!KNOWN_OS.has(n.os)) bad(`unknown operating system "${parts[0]}"`);
  if (!KNOWN_ARCH.has(n.architecture)) bad(`unknown architecture "${parts[1]}"`);
  return n;
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: PlatformSpec | Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * The platforms `want` accepts, best first (containerd's `platforms.Only`): the exact platform,
 * then compatible older variants.
 */
export function compatiblePlatforms(want: PlatformSpec): PlatformSpec[] {
  const w = normalizePlatform(want);
  const out: PlatformSpec[] = [w];
  const armVariants = (from: number) => {
    for (let v = from; v >= 5; v--) out.push({ os: w.os, architecture: 'arm', variant: `v${v}` });
  };
  if (w.architecture === 'arm64') {
    armVariants(8);
  } else if (w.architecture === 'arm') {
    const n = Number(w.variant?.slice(1) ?? 7);
    out.length = 0;
    for (let v = n; v >= 5; v--) out.push({ os: w.os, architecture: 'arm', variant: `v${v}` });
  } else if (w.architecture === 'amd64' && w.variant) {
    const n = Number(w.variant.slice(1));
    for (let v = n - 1; v >= 2; v--) out.push({ os: w.os, architecture: 'amd64', variant: `v${v}` });
    out.push({ os: w.os, architecture: 'amd64' });
  }
  return out;
}

/** How well `candidate` suits `want`: 0 = exact, larger = less good, -1 = not compatible. */
export function matchRank(want: PlatformSpec, candidate: PlatformSpec | Platform): number {
  if (candidate.os === 'unknown' || candidate.architecture === 'unknown') return -1;
  const c = normalizePlatform(candidate);
  const list = compatiblePlatforms(want);
  return list.findIndex((p) => p.os === c.os && p.architecture === c.architecture && (p.variant ?? '') === (c.variant ?? ''));
}

/**
 * Pick the best manifest from an index for `want`. Entries without a platform are accepted after
 * every explicit match (containerd lets them through its filter); `unknown/unknown` never.
 * NotFound (listing what the index offers) if nothing fits; `where` names the image.
 */
export function selectManifest(manifests: Descriptor[], want: PlatformSpec, where: string): Descriptor {
  let best: Descriptor | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const d of manifests) {
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
    const rank = d.platform ? matchRank(want, d.platform) : 1000;
    if (rank >= 0 && rank < bestRank) {
      best = d;
      bestRank = rank;
    }
  }
  if (!best) {
    const offered = manifests.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => formatPlatform(d.platform!));
    throw notFound(`${where}: no manifest for platform ${formatPlatform(want)} (the image offers: ${offered.join(', ') || 'none'})`);
  }
  return best;
}
