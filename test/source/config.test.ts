/** `[source.git]`, `[source.git.verify]` and `[device]` in the config: defaults, and errors naming the key. */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/config.ts';

describe('[source.git] and [device]', () => {
  it('reads a full section and fills defaults', () => {
    const c = configFromObject({
      source: {
        git: {
          url: 'file:///srv/fleet.git',
          path: 'devices/',
          interval: '30s',
          allow_rewind: true,
          verify: { mode: 'ssh', allowed_signers: '/etc/berth/allowed' },
        },
      },
      device: { name: 'kiosk-7', labels: { site: 'berlin' } },
    });
    expect(c.source.git).toEqual({
      url: 'file:///srv/fleet.git',
      ref: 'main',
      path: 'devices',
      intervalMs: 30_000,
      allowRewind: true,
      verify: { mode: 'ssh', allowedSigners: '/etc/berth/allowed' },
    });
    expect(c.device).toEqual({ name: 'kiosk-7', labels: { site: 'berlin' } });
    expect(configFromObject({}).source.git).toBeUndefined();
    expect(configFromObject({}).device).toBeUndefined();
    expect(configFromObject({ device: {} }).device).toEqual({ name: hostname(), labels: {} });
  });

  it.each([
    [{ source: { git: { url: 'x', branch: 'main' } } }, /unknown key "source\.git\.branch"/],
    [{ source: { git: { url: 'x', verify: { mode: 'ssh', signers: 'f' } } } }, /unknown key "source\.git\.verify\.signers"/],
    [{ source: { git: { url: 'x', interval: true } } }, /key "source\.git\.interval"/],
    [{ source: { git: { ref: 'main' } } }, /key "source\.git".*url/],
    [{ source: { git: { url: 'x', verify: { mode: 'ssh' } } } }, /source\.git\.verify\.allowed_signers" is required/],
    [{ source: { git: { url: 'x', verify: { mode: 'gpg' } } } }, /source\.git\.verify\.keyring" is required/],
    [{ source: { git: { url: 'x', path: '../etc' } } }, /source\.git\.path/],
    [{ device: { labels: { site: 3 } } }, /key "device\.labels\.site"/],
    [{ device: { nick: 'a' } }, /unknown key "device\.nick"/],
    [{ device: { labels: { site: 'ber lin' } } }, /key "device\.labels\.site" must match pattern/],
    [{ device: { labels: { 'bad key!': 'x' } } }, /key "device\.labels"/],
  ])('refuses %j', (raw, message) => {
    expect(() => configFromObject(raw)).toThrow(message);
  });
});
