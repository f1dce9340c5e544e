import { describe, expect, it } from 'vitest';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest, compatiblePlatforms } from '../../src/oci/platform.ts';
import type { Descriptor } from '../../src/oci/types.ts';
import { isKind } from '../../src/errors.ts';

const desc = (p?: string, extra: Partial<Descriptor> = {}): Descriptor => {
  const [os, architecture, variant] = (p ?? '').split('/');
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest:
      'sha256:' +
      (p ?? 'none')
        .replace(/[^a-f0-9]/g, '0')
        .padEnd(64, '0')
        .slice(0, 64),
    size: 1,
    ...(p ? { platform: { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) } } : {}),
    ...extra,
  };
};

describe('platforms parse and match as containerd does', () => {
  it.each([
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/i386', 'linux/386'],
    ['LINUX/AMD64', 'linux/amd64'],
  ])('%s → %s', (spec, want) => expect(formatPlatform(parsePlatform(spec))).toBe(want));

  it('an architecture alone means the host OS', () => {
    expect(formatPlatform(parsePlatform('arm64'))).toBe(`${hostPlatform().os}/arm64`);
  });

  it.each(['linux/', 'linux/nonsense', 'plan10/amd64', 'a/b/c/d', 'linux amd64'])('rejects %j naming it', (spec) => {
    try {
      parsePlatform(spec);
      expect.unreachable();
    } catch (e) {
      expect(isKind(e, 'InvalidArgument')).toBe(true);
      expect((e as Error).message).toContain(`"${spec}"`);
    }
  });

  it('orders compatible variants best first', () => {
    expect(compatiblePlatforms(parsePlatform('linux/arm64')).map(formatPlatform)).toEqual([
      'linux/arm64',
      'linux/arm/v8',
      'linux/arm/v7',
      'linux/arm/v6',
      'linux/arm/v5',
    ]);
    expect(compatiblePlatforms(parsePlatform('linux/arm/v6')).map(formatPlatform)).toEqual(['linux/arm/v6', 'linux/arm/v5']);
  });

  it('selects the exact platform, then compatible variants, never unknown/unknown', () => {
    const index = [desc('unknown/unknown'), desc('linux/arm/v6'), desc('linux/arm/v7'), desc('linux/amd64'), desc('linux/arm64/v8')];
    expect(selectManifest(index, parsePlatform('linux/amd64'), 'x').platform?.architecture).toBe('amd64');
    expect(selectManifest(index, parsePlatform('linux/arm64'), 'x').platform?.architecture).toBe('arm64');
    expect(selectManifest(index, parsePlatform('linux/arm/v7'), 'x').platform?.variant).toBe('v7');
    expect(selectManifest([desc('linux/arm/v6'), desc('linux/arm/v5')], parsePlatform('linux/arm/v7'), 'x').platform?.variant).toBe('v6');
    expect(selectManifest([desc('linux/arm/v7')], parsePlatform('linux/arm64'), 'x').platform?.variant).toBe('v7');
    expect(() => selectManifest([desc('linux/arm/v7')], parsePlatform('linux/arm/v6'), 'img')).toThrow(
      /img: no manifest for platform linux\/arm\/v6 \(the image offers: linux\/arm\/v7\)/,
    );
    expect(() => selectManifest([desc('unknown/unknown')], parsePlatform('linux/amd64'), 'img')).toThrow(/offers: none/);
  });
});
