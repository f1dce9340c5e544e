/**
 * The reconcile lock row records its holder's owner identity: a row whose pid is alive but whose
 * process started at another tick (a reused pid), or that was taken in another boot, is taken
 * over at once even before it expires; a live holder (a real child process) is respected and
 * named, without the identity, in the error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { acquireLock, RECONCILE_LOCK } from '../../src/metadata/lock.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { bootId, formatOwner, processStartTime, selfIdentity, type OwnerIdentity } from '../../src/owner-identity.ts';

let dir: string;
let md: Metadata;
let child: ChildProcess | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-lock-owner-'));
  md = Metadata.open(join(dir, 'metadata.db'));
});
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
  md.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A row as another berth would have written it: holder text with its identity, pid alive. */
function heldBy(owner: OwnerIdentity): void {
  const r = md.tryAcquireLock(RECONCILE_LOCK, { holder: `berth run (pid ${owner.pid}) {owner ${formatOwner(owner)}}`, ttlMs: 10 * 60_000, pid: owner.pid });
  expect(r.acquired).toBe(true);
}

describe('the reconcile lock and owner identity', () => {
  test('a reused pid (alive, another start time) is taken over before the row expires', async () => {
    heldBy({ ...selfIdentity(), start: selfIdentity().start + 1 });
    const lock = await acquireLock(md, RECONCILE_LOCK, { holder: 'berth apply' });
    expect(lock.holder).toBe('berth apply');
  });

  test('a row from another boot is taken over', async () => {
    heldBy({ ...selfIdentity(), boot: bootId() === '0'.repeat(32) ? '1'.repeat(32) : '0'.repeat(32) });
    expect((await acquireLock(md, RECONCILE_LOCK, { holder: 'berth apply' })).holder).toBe('berth apply');
  });

  test('a live holder is respected and named', async () => {
    child = spawn('sleep', ['1000'], { stdio: 'ignore' });
    await new Promise((resolve, reject) => child!.once('spawn', resolve).once('error', reject));
    const start = processStartTime(child.pid!);
    if (typeof start !== 'number') throw new Error('no start time');
    heldBy({ pid: child.pid!, start, boot: bootId() });
    const err = await acquireLock(md, RECONCILE_LOCK, { holder: 'berth apply' }).catch((e) => e);
    expect(isKind(err, 'Unavailable'), String(err)).toBe(true);
    expect(err.message).toContain(`held by berth run (pid ${child.pid}) (pid ${child.pid})`);
    expect(err.message).not.toContain('{owner');
  });
});
