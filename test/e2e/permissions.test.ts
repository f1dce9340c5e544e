/**
 * What berth keeps owner-only, and the mount options that keep a set-uid binary or a device node
 * from working where it should not: the root is 0700 however it was first made; metadata.db and
 * the container's record and bundle config (which hold env values) are 0600; a named volume is
 * mounted nosuid,nodev in the container, and `berth mount` on the host; a config file holding a
 * password that others can read is warned about; the metrics socket gets its directory and mode
 * 0660, and a TCP address other hosts reach is refused unless allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { containerDoc, DEMO_REF, E2eRoot, requireE2e, until, volumeDoc } from '../helpers/e2e.ts';
import { unmount } from '../../src/snapshots/mount.ts';

let e: E2eRoot;
const mode = (p: string) => statSync(p).mode & 0o777;

/** The mount options (per-mount and superblock) of `mountPoint` as `pid` sees it. */
function mountOptions(pid: number | 'self', mountPoint: string): string[] {
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] !== mountPoint) continue;
    const dash = f.indexOf('-');
    return [...f[5]!.split(','), ...(f[dash + 3] ?? '').split(',')];
  }
  throw new Error(`${mountPoint} is not mounted for ${pid}`);
}

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('permissions');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('permissions and mount options', () => {
  it('tightens a 0755 root to 0700 and keeps metadata.db owner-only', async () => {
    chmodSync(e.root, 0o755);
    const r = await e.berth('images');
    expect(r.code, r.stderr).toBe(0);
    expect(mode(e.root)).toBe(0o700);
    const db = join(e.root, 'metadata.db');
    chmodSync(db, 0o644);
    expect((await e.berth('images')).code).toBe(0);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) if (existsSync(f)) expect(mode(f), f).toBe(0o600);
  });

  it('a root first made by the overlay probe is 0700', async () => {
    const fresh = await E2eRoot.create('permissions-probe');
    try {
      await rm(fresh.root, { recursive: true });
      const r = await fresh.berth('--snapshotter', 'auto', 'snapshots', 'ls');
      expect(r.code, r.stderr).toBe(0);
      expect(mode(fresh.root)).toBe(0o700);
    } finally {
      await fresh.cleanup();
    }
  });

  it('container records are 0600; a volume is mounted nosuid,nodev; berth mount too', async () => {
    await e.writeManifests({ 'app.yaml': [volumeDoc('data'), containerDoc('app', { image: DEMO_REF, volume: 'data', env: { SECRET: 's3cret' } })] });
    const r = await e.berth('apply', '-f', e.manifests);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const dir = join(e.root, 'containers', 'app');
    expect(mode(join(dir, 'state.json'))).toBe(0o600);
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    const task = await until('app to run', () => e.running('app'));
    expect(mountOptions(task.pid!, '/data')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));

    const target = join(e.dir, 'view');
    mkdirSync(target);
    const m = await e.berth('mount', DEMO_REF, target);
    expect(m.code, m.stderr).toBe(0);
    try {
      expect(mountOptions('self', target)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    } finally {
      await e.berth('unmount', target);
      await unmount(target).catch(() => {});
    }
  });

  it('warns when a config file holding a password is readable by others', async () => {
    const original = await readFile(e.config, 'utf8');
    try {
      await writeFile(e.config, `${original}\n[registry.hosts."registry.example"]\nusername = "edge"\npassword = "hunter2"\n`);
      chmodSync(e.config, 0o644);
      const loose = await e.berth('images');
      expect(loose.code, loose.stderr).toBe(0);
      expect(loose.stderr).toContain(`${e.config} holds registry passwords (registry.example) and is not owner-only (mode 644)`);
      expect(loose.stderr).not.toContain('hunter2');
      chmodSync(e.config, 0o600);
      expect((await e.berth('images')).stderr).not.toContain('is not owner-only');
    } finally {
      await writeFile(e.config, original);
    }
  });

  it('serves metrics on a unix socket in a directory it makes, mode 0660; refuses a remote TCP address unless allowed', async () => {
    const original = await readFile(e.config, 'utf8');
    try {
      const socket = join(e.dir, 'run', 'berth', 'metrics.sock');
      await writeFile(e.config, `${original}\n[metrics]\naddress = "unix:${socket}"\n`);
      const daemon = e.start('run', '-f', e.manifests);
      await daemon.waitFor(/serving \/healthz and \/metrics/);
      expect(statSync(socket).isSocket()).toBe(true);
      expect(mode(socket)).toBe(0o660);
      expect((await daemon.stop()).code).toBe(0);

      await writeFile(e.config, `${original}\n[metrics]\naddress = "0.0.0.0:19097"\n`);
      const refused = await e.berth('run', '-f', e.manifests);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('allow_remote');

      await writeFile(e.config, `${original}\n[metrics]\naddress = "0.0.0.0:19097"\nallow_remote = true\n`);
      const allowed = e.start('run', '-f', e.manifests);
      await allowed.waitFor(/serving \/healthz and \/metrics/);
      expect((await allowed.stop()).code).toBe(0);
    } finally {
      await writeFile(e.config, original);
    }
  });
});
