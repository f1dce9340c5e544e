import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { parseDuration, parseSize } from '../../src/config/units.ts';
import { BerthError } from '../../src/errors.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.toml');
  await writeFile(file, text);
  return file;
}

async function loadError(text: string): Promise<BerthError> {
  const err = await loadConfig(await configFile(text)).catch((e) => e);
  expect(err).toBeInstanceOf(BerthError);
  expect(err.kind).toBe('InvalidArgument');
  return err;
}

describe('config', () => {
  it('a missing file means defaults', async () => {
    const c = await loadConfig('/nonexistent/berth/config.toml');
    expect(c.root).toBe('/var/lib/berth');
    expect(c.pull.concurrency).toBe(3);
    expect(c.runtime.binary).toBe('runc');
    expect(c.reconcile.importDir).toBe('/var/lib/berth/import');
  });

  it('reads every section, with units', async () => {
    const c = await loadConfig(
      await configFile(`
root = "/srv/berth"
snapshotter = "native"
[pull]
concurrency = 5
stale_ingest_age = "2h"
[registry.hosts."10.0.0.5:5000"]
plain_http = true
mirrors = ["http://127.0.0.1:5001"]
headers = { "X-Device" = "kiosk-7" }
[runtime]
binary = "crun"
log_max_size = "1Mi"
[reconcile]
resync_interval = "1m30s"
[gc]
reserve = "1G"
[metrics]
address = "127.0.0.1:9097"
`),
    );
    expect(c.root).toBe('/srv/berth');
    expect(c.snapshotter).toBe('native');
    expect(c.pull.concurrency).toBe(5);
    expect(c.pull.staleIngestAgeMs).toBe(2 * 3600_000);
    expect(c.registry.hosts['10.0.0.5:5000']).toMatchObject({ plainHttp: true, mirrors: ['http://127.0.0.1:5001'], headers: { 'X-Device': 'kiosk-7' } });
    expect(c.runtime).toMatchObject({ binary: 'crun', logMaxBytes: 1024 * 1024 });
    expect(c.reconcile.resyncIntervalMs).toBe(90_000);
    expect(c.reconcile.importDir).toBe('/srv/berth/import');
    expect(c.gc.reserveBytes).toBe(1e9);
    expect(c.metrics.address).toBe('127.0.0.1:9097');
  });

  it('an unknown key is an error naming the key', async () => {
    const err = await loadError('[pull]\nconcurency = 4\n');
    expect(err.message).toContain('unknown key "pull.concurency"');
  });

  it('a wrong type is an error naming the key', async () => {
    const err = await loadError('[pull]\nconcurrency = "four"\n');
    expect(err.message).toContain('"pull.concurrency"');
    expect(err.message).toContain('integer');
  });

  it('a bad unit is an error naming the key', async () => {
    const err = await loadError('[reconcile]\nresync_interval = "soon"\n');
    expect(err.message).toContain('reconcile.resync_interval');
  });

  it('invalid TOML names the file, line and column', async () => {
    const file = await configFile('root = "/x"\n[pull\n');
    const err = await loadConfig(file).catch((e) => e);
    expect(err.kind).toBe('InvalidArgument');
    expect(err.place).toMatchObject({ file, line: 2 });
    expect(err.message).toMatch(new RegExp(`^${file}:2:\\d+: invalid TOML`));
  });
});

describe('units', () => {
  it('parses sizes and durations and rejects nonsense', () => {
    expect(parseSize('64Mi')).toBe(64 * 1024 * 1024);
    expect(parseSize('1.5G')).toBe(1.5e9);
    expect(parseSize(4096)).toBe(4096);
    expect(() => parseSize('lots')).toThrow(/not a size/);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration(2)).toBe(2000);
    expect(() => parseDuration('10 parsecs')).toThrow(/not a duration/);
  });
});
