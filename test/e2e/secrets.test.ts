/**
 * Secrets encrypted with age to the device's key (issue 13), through the CLI with real runc: the
 * plaintext reaches the container as files and as env, and nowhere on disk outside berth's tmpfs
 * (every file under the root and the test's directory is searched, and /tmp's recent files); a new
 * ciphertext recreates the container; a secret the device cannot decrypt holds back only the
 * container that needs it, naming the secret and its place.
 */
import { execFileSync } from 'node:child_process';
import { chmod, lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ageEncrypt, strangerRecipient } from '../helpers/age.ts';
import { DEMO_REF, E2eRoot, containerDoc, requireE2e } from '../helpers/e2e.ts';

let e: E2eRoot;
let recipient: string;
const started = Date.now();
// Distinct, so a hit names what leaked; long enough never to occur by chance.
const PASSWORD = 'pw-4f1c9e7a2b-never-on-disk';
const USER = 'user-8d3a6b1f0c-never-on-disk';
const ROTATED = 'pw-rotated-5e2d7c9b1a-never-on-disk';

async function encrypt(plaintext: string, to = recipient): Promise<string> {
  return ageEncrypt(plaintext, to);
}

const secretDoc = (name: string, data: Record<string, string>) => ({ apiVersion: 'berth.dev/v1alpha1', kind: 'Secret', metadata: { name }, spec: { data } });

/** The `app` container: the secret's keys as env, one key as a file, the whole secret as a directory. */
function appDoc(): object {
  const doc = containerDoc('app', { image: DEMO_REF }) as { spec: Record<string, unknown> };
  doc.spec.envFrom = [{ secret: 'db' }];
  doc.spec.mounts = [
    { type: 'secret', name: 'db', key: 'DB_PASSWORD', target: '/run/secrets/db' },
    { type: 'secret', name: 'db', target: '/etc/db' },
  ];
  return doc;
}

/** Every regular file under `dir` (not following links, not entering `skip`) that contains `needle`. */
async function filesContaining(dir: string, needle: string, skip: string[], newerThan = 0): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const p = join(d, name);
      if (skip.includes(p)) continue;
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else if (st.isFile() && st.mtimeMs >= newerThan && st.size < 64 << 20) {
        if ((await readFile(p).catch(() => Buffer.alloc(0))).includes(needle)) hits.push(p);
      }
    }
  };
  await walk(dir);
  return hits;
}

const exec = async (...cmd: string[]) => {
  const r = await e.berth('exec', 'app', '--', ...cmd);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('secrets');
  await e.importDemo();
  const r = await e.berth('secret', 'recipient');
  expect(r.code, r.stderr).toBe(0);
  recipient = r.stdout.trim();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('Secret (age)', () => {
  it('the device key is made owner-only, and its recipient is printed', async () => {
    expect(recipient).toMatch(/^age1[0-9a-z]+$/);
    expect((await stat(join(e.root, 'age.key'))).mode & 0o777).toBe(0o600);
    expect((await e.berth('secret', 'recipient')).stdout.trim()).toBe(recipient); // the same key, not a new one
  });

  it('reaches the container as env and as files, and appears on disk only in the tmpfs', async () => {
    await e.writeManifests({ 'app.yaml': [secretDoc('db', { DB_PASSWORD: await encrypt(PASSWORD), DB_USER: await encrypt(USER) }), appDoc()] });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);

    expect(await exec('/bin/cat', '/run/secrets/db')).toBe(PASSWORD);
    expect(await exec('/bin/cat', '/etc/db/DB_USER')).toBe(USER);
    // The task's own env (PID 1), not only what exec is given.
    const environ = (await exec('/bin/cat', '/proc/1/environ')).split('\0');
    expect(environ).toContain(`DB_PASSWORD=${PASSWORD}`);
    expect(environ).toContain(`DB_USER=${USER}`);
    // Read-only, even for root in the container.
    expect((await e.berth('exec', 'app', '--', '/bin/sh', '-c', 'echo x > /run/secrets/db')).code).not.toBe(0);

    const run = join(e.root, 'run', 'secrets');
    expect(execFileSync('findmnt', ['-n', '-o', 'FSTYPE', run], { encoding: 'utf8' }).trim()).toBe('tmpfs');
    for (const secret of [PASSWORD, USER]) {
      // The search finds the plaintext where it is meant to be (the tmpfs): it would find it elsewhere.
      expect((await filesContaining(run, secret, [])).length).toBeGreaterThan(0);
      expect(await filesContaining(e.dir, secret, [run])).toEqual([]);
      expect(await filesContaining('/tmp', secret, [run], started)).toEqual([]);
    }

    // Nor in what berth prints about it.
    const shown = [apply.stdout, apply.stderr];
    for (const verb of [['plan', '-f', e.manifests], ['status', '--json', '--events', '200'], ['inspect', 'app'], ['ps'], ['logs', 'app']]) {
      const r = await e.berth(...verb);
      shown.push(r.stdout, r.stderr);
    }
    expect(shown.join('\n')).not.toContain(PASSWORD);
    expect(shown.join('\n')).not.toContain(USER);
  });

  it('a new ciphertext recreates the container with the new value', async () => {
    await e.writeManifests({ 'app.yaml': [secretDoc('db', { DB_PASSWORD: await encrypt(ROTATED), DB_USER: await encrypt(USER) }), appDoc()] });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain('app: recreate (secret db changed)');
    expect(await exec('/bin/cat', '/run/secrets/db')).toBe(ROTATED);
    expect((await exec('/bin/cat', '/proc/1/environ')).split('\0')).toContain(`DB_PASSWORD=${ROTATED}`);
    expect(await filesContaining(e.dir, ROTATED, [join(e.root, 'run', 'secrets')])).toEqual([]);
  });

  it('after a reboot (the tmpfs and the task gone), the next apply decrypts again and the restarted task has its secrets', async () => {
    const record = JSON.parse(await readFile(join(e.root, 'containers', 'app', 'state.json'), 'utf8'));
    process.kill(record.task.shimPid, 'SIGKILL'); // the supervisor first, so no exit is recorded: a reboot's picture
    process.kill(record.task.pid, 'SIGKILL');
    execFileSync('umount', ['-l', join(e.root, 'run', 'secrets')]);
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/app: restart \(exit status lost/);
    expect(execFileSync('findmnt', ['-n', '-o', 'FSTYPE', join(e.root, 'run', 'secrets')], { encoding: 'utf8' }).trim()).toBe('tmpfs');
    expect((await exec('/bin/cat', '/proc/1/environ')).split('\0')).toContain(`DB_PASSWORD=${ROTATED}`);
    expect(await exec('/bin/cat', '/run/secrets/db')).toBe(ROTATED);
  });

  it('a secret the device cannot decrypt holds back only the container that needs it', async () => {
    const stranger = strangerRecipient();
    const locked = containerDoc('locked', { image: DEMO_REF }) as { spec: Record<string, unknown> };
    locked.spec.mounts = [{ type: 'secret', name: 'other', target: '/run/secrets/other' }];
    await e.writeManifests({
      'app.yaml': [secretDoc('db', { DB_PASSWORD: await encrypt(ROTATED), DB_USER: await encrypt(USER) }), appDoc()],
      'locked.yaml': [secretDoc('other', { token: await encrypt('not for this device', stranger) }), locked, containerDoc('free', { image: DEMO_REF })],
    });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code).toBe(1); // not converged
    expect(apply.stdout).toMatch(
      /locked: create waits for secret other \(\S*locked\.yaml:1:1: cannot be decrypted with the device's key \S*age\.key: key token: no identity matched/,
    );
    expect(apply.stdout).not.toMatch(/FAILED/);
    expect((await e.ps()).map((c) => `${c.name}:${c.state}`).sort()).toEqual(['app:running', 'free:running']);
    const status = await e.status();
    expect(status.objects.find((o) => o.kind === 'Container' && o.name === 'locked')).toMatchObject({
      state: 'Reconciling',
      reason: 'Waiting',
      message: expect.stringContaining('secret other'),
    });
    expect(status.objects.filter((o) => o.kind === 'Secret').map((o) => `${o.name} ${o.state} ${o.reason} ${o.message}`)).toEqual([
      'db Ready Decrypted decrypted on this device',
      expect.stringMatching(/^other Stalled CannotDecrypt \S*locked\.yaml:1:1: cannot be decrypted with the device's key/),
    ]);

    // A device key others can read is refused: every container that needs a secret waits, the rest runs.
    await chmod(join(e.root, 'age.key'), 0o644);
    const loose = await e.berth('plan', '-f', e.manifests);
    expect(loose.stdout).toMatch(/locked: create waits for secret other \(.*readable by others \(mode 0644\)/);
    await chmod(join(e.root, 'age.key'), 0o600);
  });

  it('under berth run, a secret encrypted to the device later (after a wrong one) starts its container, and a new ciphertext recreates it', async () => {
    const locked = containerDoc('locked', { image: DEMO_REF }) as { spec: Record<string, unknown> };
    locked.spec.envFrom = [{ secret: 'other' }];
    const write = async (token: string, to?: string) =>
      e.writeManifests({
        'app.yaml': [secretDoc('db', { DB_PASSWORD: await encrypt(ROTATED), DB_USER: await encrypt(USER) }), appDoc()],
        'locked.yaml': [secretDoc('other', { token: await encrypt(token, to) }), locked],
      });
    await write('for someone else', strangerRecipient());
    const daemon = e.start('run', '-f', e.manifests);
    try {
      await daemon.waitFor(/locked: create waits for secret other/, 60_000);
      const from = daemon.output().length;
      await write('daemon-1-9c4e2a');
      await daemon.waitFor(/done +locked: create \(not present\)/, 60_000, from);
      const env = async () => (await e.berth('exec', 'locked', '--', '/bin/cat', '/proc/1/environ')).stdout.split('\0');
      expect(await env()).toContain('token=daemon-1-9c4e2a');
      await write('daemon-2-7b1f3d');
      await daemon.waitFor(/done +locked: recreate \(secret other changed\)/, 60_000, from);
      expect(await env()).toContain('token=daemon-2-7b1f3d');
      expect(await e.running('app')).toBeDefined();
    } finally {
      await daemon.stop();
    }
  });

  it('berth validate names file:line:col of a value that is not age ciphertext, without quoting it', async () => {
    await e.writeManifests({
      'bad.yaml': 'apiVersion: berth.dev/v1alpha1\nkind: Secret\nmetadata: {name: db}\nspec:\n  data:\n    DB_PASSWORD: hunter2-plain\n',
    });
    const r = await e.berth('validate', '-f', e.manifests);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:6:18: spec\.data\.DB_PASSWORD: not an age-encrypted value/);
    expect(r.stderr).not.toContain('hunter2-plain');
  });
});
