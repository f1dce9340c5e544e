/**
 * Start-up recovery runs under the reconcile lock, and readers never recover. While another live
 * process holds the lock (a daemon half-way through creating a container), `berth plan` and
 * `berth status` leave everything on disk as it is: a container directory without its record, a
 * snapshot directory being built, an old ingest. `berth run` waits for the lock before it
 * recovers, then takes it and removes what is really half-made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2eRoot, requireE2e, until } from '../helpers/e2e.ts';
import { RECONCILE_LOCK } from '../../src/metadata/lock.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { bootId, formatOwner } from '../../src/owner-identity.ts';

let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('recovery-lock');
  // A root with every part made: an empty set applied.
  const first = await e.berth('apply', '--allow-empty', '-f', e.manifests);
  expect(first.code, first.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('recovery and the reconcile lock', () => {
  it('plan and status change nothing while another process holds the lock; run waits for it, then recovers', async () => {
    const md = Metadata.open(join(e.root, 'metadata.db'));
    try {
      // This test process, alive, holds the lock as a daemon mid-turn would.
      const attempt = md.tryAcquireLock(RECONCILE_LOCK, { holder: 'a daemon creating a container', ttlMs: 10 * 60_000 });
      expect(attempt.acquired).toBe(true);
      if (!attempt.acquired) return;

      const halfMadeContainer = join(e.root, 'containers', 'half-made');
      mkdirSync(halfMadeContainer, { recursive: true });
      const snapshots = readdirSync(e.root).filter((n) => n.startsWith('io.containerd.snapshotter.v1.'));
      expect(snapshots.length).toBe(1);
      // A build directory of a process that is gone (this pid, a start time it does not have).
      const building = join(e.root, snapshots[0]!, 'snapshots', `new-${formatOwner({ pid: process.pid, start: 1, boot: bootId() })}-0bad`);
      mkdirSync(join(building, 'fs'), { recursive: true });
      const ingest = join(e.root, 'io.containerd.content.v1.content', 'ingest', 'f'.repeat(64));
      mkdirSync(ingest, { recursive: true });
      writeFileSync(join(ingest, 'ref'), 'old-download');
      utimesSync(join(ingest, 'ref'), new Date(0), new Date(0));
      const untouched = () => [halfMadeContainer, building, ingest].filter((p) => !existsSync(p));

      const plan = await e.berth('plan', '--allow-empty', '-f', e.manifests);
      expect(plan.code, plan.stderr).toBe(0);
      expect(untouched()).toEqual([]);
      const status = await e.berth('status');
      expect(status.code, status.stderr).toBe(0);
      expect(untouched()).toEqual([]);

      const daemon = e.start('run', '--allow-empty', '-f', e.manifests);
      await daemon.waitFor(/waiting for the reconcile lock before start-up recovery/);
      expect(untouched()).toEqual([]);
      md.releaseLock(attempt.lock);
      await daemon.waitFor(/berth is running/);
      expect(untouched().sort()).toEqual([building, halfMadeContainer, ingest].sort());
      const stopped = await daemon.stop();
      expect(stopped.code, stopped.stderr).toBe(0);
      await until('the daemon to release the lock', () => md.getLock(RECONCILE_LOCK) === undefined);
    } finally {
      md.close();
    }
  });
});
