import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { checkManifests, loadManifests } from '../../src/manifest/load.ts';
import { formatProblem, ManifestSetError } from '../../src/manifest/problems.ts';
import { manifestRevision } from '../../src/manifest/revision.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';

const REPO = join(import.meta.dirname, '..', '..');
let base: string;
let validator: DocumentValidator;
let n = 0;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'berth-manifest-'));
  validator = await createDocumentValidator();
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Writes `files` (path → text) into a fresh directory and returns it. */
async function setOf(files: Record<string, string>): Promise<string> {
  const dir = join(base, `set-${++n}`);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The problems of a set, as `name:line:col: message` with the directory stripped. */
async function problemsOf(files: Record<string, string>): Promise<string[]> {
  const dir = await setOf(files);
  const r = await checkManifests(dir, { validator, revision: false });
  expect(r.state === undefined).toBe(r.problems.length > 0);
  return r.problems.map((p) => formatProblem(p).slice(dir.length + 1));
}

const VOLUME = (name: string) => `apiVersion: berth.dev/v1alpha1\nkind: Volume\nmetadata: {name: ${name}}\n`;
const container = (name: string, specLines: string) => `apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata:\n  name: ${name}\nspec:\n${specLines}`;

describe('every problem names file:line:col', () => {
  it('a YAML syntax error', async () => {
    expect(await problemsOf({ 'a.yaml': 'apiVersion: berth.dev/v1alpha1\nkind: [Container\n' })).toEqual([expect.stringMatching(/^a\.yaml:3:1: YAML: /)]);
  });

  it('a duplicate key', async () => {
    const p = await problemsOf({ 'a.yaml': container('web', '  image: busybox:1\n  image: busybox:2\n') });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^a\.yaml:7:3: YAML: .*unique/i);
  });

  it('an unknown field, at its key, with a suggestion', async () => {
    const p = await problemsOf({ 'a.yaml': container('web', '  image: busybox:1\n  restartpolicy: Never\n') });
    expect(p).toEqual(['a.yaml:7:3: spec: unknown field "restartpolicy"; did you mean "restartPolicy"?']);
  });

  it('an unknown top-level field and an unknown mount field', async () => {
    const p = await problemsOf({
      'a.yaml': container('web', '  image: busybox:1\n  mounts:\n    - {type: bind, source: /a, target: /b, sise: 1}\n') + 'extra: 1\n',
    });
    expect(p).toEqual([
      'a.yaml:8:44: spec.mounts[0]: unknown field "sise" (allowed: type, target, source, readOnly)',
      'a.yaml:9:1: document: unknown field "extra" (allowed: apiVersion, kind, metadata, spec)',
    ]);
  });

  it('a value outside an enum, at the value', async () => {
    const p = await problemsOf({ 'a.yaml': container('web', '  image: busybox:1\n  restartPolicy: always\n') });
    expect(p).toEqual(['a.yaml:7:18: spec.restartPolicy: "always" is not one of Always, OnFailure, Never; did you mean "Always"?']);
  });

  it('a missing required field, at the map that lacks it', async () => {
    const p = await problemsOf({ 'a.yaml': container('web', '  env: {A: b}\n') });
    expect(p).toEqual(['a.yaml:6:3: spec: missing required field "image"']);
  });

  it('a wrong apiVersion and a wrong type', async () => {
    const p = await problemsOf({
      'a.yaml': 'apiVersion: v1\nkind: Container\nmetadata: {name: web}\nspec: {image: "busybox:1", args: "-f"}\n',
    });
    expect(p).toEqual(['a.yaml:1:13: apiVersion: must be "berth.dev/v1alpha1" (got "v1")', 'a.yaml:4:34: spec.args: must be a list (got "-f")']);
  });

  it('a bad size, a bad duration, a bad name', async () => {
    const p = await problemsOf({
      'a.yaml':
        'apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: Web_1}\nspec:\n  image: busybox:1\n  resources: {memory: lots}\n  stopGracePeriod: soon\n',
    });
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/^a\.yaml:3:18: metadata\.name: "Web_1" is not valid \(a DNS label/);
    expect(p[1]).toMatch(/^a\.yaml:6:23: spec\.resources\.memory: "lots" is not a size/);
    expect(p[2]).toMatch(/^a\.yaml:7:20: spec\.stopGracePeriod: "soon" is not a duration/);
  });

  it('a document that is not a map', async () => {
    expect(await problemsOf({ 'a.yaml': '- just\n- a list\n' })).toEqual(['a.yaml:1:1: a document must be a map with apiVersion, kind, metadata and spec']);
  });

  it('duplicate names of one kind, across files (the same name in another kind is fine)', async () => {
    const p = await problemsOf({
      'a.yaml': container('web', '  image: busybox:1\n'),
      'sub/b.yml': `${VOLUME('web')}---\n${container('web', '  image: busybox:2\n')}`,
    });
    expect(p).toEqual([expect.stringMatching(/^sub\/b\.yml:8:9: duplicate Container "web" \(first declared at \/.*\/a\.yaml:4:9\)$/)]);
  });

  it('dependsOn to a missing container, to itself, and a cycle', async () => {
    const p = await problemsOf({
      'a.yaml': [
        container('a', '  image: busybox:1\n  dependsOn: [b]\n'),
        container('b', '  image: busybox:1\n  dependsOn: [c, nope]\n'),
        container('c', '  image: busybox:1\n  dependsOn: [a]\n'),
        container('d', '  image: busybox:1\n  dependsOn: [d]\n'),
      ].join('---\n'),
    });
    expect(p).toEqual([
      'a.yaml:7:15: spec.dependsOn: dependency cycle a → b → c → a',
      'a.yaml:15:18: spec.dependsOn: no Container named "nope"',
      'a.yaml:31:15: spec.dependsOn: container "d" depends on itself',
    ]);
  });

  it('an image naming no Image object, and an invalid reference', async () => {
    const p = await problemsOf({
      'a.yaml': `${container('a', '  image: busybox\n')}---\n${container('b', '  image: "Busy Box:1"\n')}`,
    });
    expect(p).toEqual([
      'a.yaml:6:10: spec.image: no Image named "busybox" (declare one with kind: Image, or write a reference with a tag, e.g. "busybox:latest")',
      expect.stringMatching(/^a\.yaml:13:10: spec\.image: invalid image reference "Busy Box:1"/),
    ]);
  });

  it('a volume mount naming an undeclared Volume, and two mounts on one target', async () => {
    const p = await problemsOf({
      'a.yaml': container('a', '  image: busybox:1\n  mounts:\n    - {type: volume, name: data, target: /d}\n    - type: tmpfs\n      target: /d\n'),
    });
    expect(p).toEqual([
      'a.yaml:8:28: spec.mounts[0].name: no Volume named "data" (declare it: kind: Volume, metadata.name: data)',
      'a.yaml:10:15: spec.mounts[1].target: /d is already mounted by mounts[0]',
    ]);
  });

  it('an invalid Image ref and platform', async () => {
    const p = await problemsOf({
      'i.yaml': 'apiVersion: berth.dev/v1alpha1\nkind: Image\nmetadata: {name: x}\nspec:\n  ref: "a:b:c:d"\n  platform: linux/nonsense\n',
    });
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^i\.yaml:5:8: spec\.ref: invalid image reference "a:b:c:d"/);
    expect(p[1]).toMatch(/^i\.yaml:6:13: spec\.platform: invalid platform "linux\/nonsense"/);
  });

  it('reports every problem of every file at once, and yields no state', async () => {
    const dir = await setOf({
      'a.yaml': container('a', '  image: nothere\n'),
      'b.yaml': container('b', '  image: busybox:1\n  network: bridge\n'),
      'c.yaml': 'kind: [\n',
      'ok.yaml': container('ok', '  image: busybox:1\n'),
    });
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.state).toBeUndefined();
    expect(r.problems.map((p) => p.place.file!.slice(dir.length + 1))).toEqual(['a.yaml', 'b.yaml', 'c.yaml']);
    const err = await loadManifests(dir, { validator }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestSetError);
    expect(isKind(err, 'InvalidArgument')).toBe(true);
    expect((err as ManifestSetError).problems).toHaveLength(3);
    expect((err as Error).message).toContain('3 problems in the manifests:');
  });

  it('a reference to a document that has its own problem is not also reported as dangling', async () => {
    const p = await problemsOf({
      'a.yaml': `${container('a', '  image: busybox:1\n  dependsOn: [b]\n')}---\n${container('b', '  image: busybox:1\n  bogus: 1\n')}`,
    });
    expect(p).toEqual([expect.stringMatching(/^a\.yaml:15:3: spec: unknown field "bogus"/)]);
  });
});

describe('which files are read', () => {
  it('ignores hidden files and directories, editor swap and backup files, and non-YAML files', async () => {
    const junk = 'kind: [this is not valid\n';
    const dir = await setOf({
      'web.yaml': container('web', '  image: busybox:1\n'),
      'nested/deeper/ticker.YML': container('ticker', '  image: busybox:1\n'),
      '.hidden.yaml': junk,
      '.web.yaml.swp': junk,
      '.#web.yaml': junk,
      '#web.yaml#': junk,
      'web.yaml~': junk,
      'web.yaml.bak': junk,
      'web.yaml.orig': junk,
      'README.md': junk,
      'notes.txt': junk,
      '.git/config.yaml': junk,
      '.cache/x.yml': junk,
    });
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.problems).toEqual([]);
    expect(r.files.map((f) => f.slice(dir.length + 1))).toEqual(['nested/deeper/ticker.YML', 'web.yaml']);
    expect(r.state!.containers.map((c) => c.metadata.name).sort()).toEqual(['ticker', 'web']);
  });

  it('reads a single named file, skips empty documents, and fails on a missing path with NotFound', async () => {
    const dir = await setOf({ 'one.yaml': `---\n# only a comment\n---\n${container('web', '  image: busybox:1\n')}---\n` });
    const state = await loadManifests(join(dir, 'one.yaml'), { validator, revision: false });
    expect(state.containers).toHaveLength(1);
    const err = await loadManifests(join(dir, 'nope'), { validator }).catch((e: unknown) => e);
    expect(isKind(err, 'NotFound')).toBe(true);
  });

  it('follows links to files, reports a dangling link as unreadable, skips a link to a directory', async () => {
    const dir = await setOf({ 'real/web.txt': container('web', '  image: busybox:1\n'), 'sub/x': '' });
    await symlink(join(dir, 'real/web.txt'), join(dir, 'web.yaml'));
    await symlink(join(dir, 'sub'), join(dir, 'dir.yaml'));
    const ok = await checkManifests(dir, { validator, revision: false });
    expect(ok.problems).toEqual([]);
    expect(ok.state!.containers.map((c) => c.metadata.name)).toEqual(['web']);
    await symlink(join(dir, 'gone'), join(dir, 'dangling.yaml'));
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.state).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([expect.stringMatching(/dangling\.yaml: cannot read: ENOENT/)]);
  });

  it('an empty set is refused unless allowed (it would remove every container)', async () => {
    const dir = await setOf({ 'empty.yaml': '# nothing yet\n', 'notes.txt': 'x' });
    const r = await checkManifests(dir, { validator, revision: false });
    expect(r.state).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      `${dir}: no documents: an empty desired state would remove every container; refusing it unless explicitly allowed`,
    ]);
    const state = await loadManifests(dir, { validator, revision: false, allowEmpty: true });
    expect(state).toEqual({ containers: [], images: [], volumes: [] });
  });
});

describe('defaults and normalisation', () => {
  it('YAML merge keys work within a document; an alias to another document is a problem, not a crash', async () => {
    const dir = await setOf({
      'a.yaml': container(
        'a',
        '  <<: &common {image: "busybox:1", env: {LOG: debug}}\n  args: [a]\n  mounts:\n    - &tmp {type: tmpfs, target: /tmp}\n    - {<<: *tmp, target: /run}\n',
      ),
    });
    const s = await loadManifests(dir, { validator, revision: false });
    const a = s.containers[0]!;
    expect([a.imageRef, a.spec.env.LOG, a.spec.args, a.spec.mounts.map((m) => m.target)]).toEqual([
      'docker.io/library/busybox:1',
      'debug',
      ['a'],
      ['/tmp', '/run'],
    ]);
    const p = await problemsOf({
      'b.yaml': `${container('a', '  <<: &common {image: "busybox:1"}\n')}---\n${container('b', '  <<: *common\n')}`,
    });
    expect(p).toEqual([expect.stringMatching(/^b\.yaml:(8|9|10):\d+: YAML: /)]);
  });

  it('fills in every default and parses units', async () => {
    const dir = await setOf({
      'a.yaml':
        container('web', '  image: busybox\n') +
        `---\n${VOLUME('v')}` +
        '---\napiVersion: berth.dev/v1alpha1\nkind: Image\nmetadata: {name: busybox}\nspec: {ref: busybox}\n',
    });
    const s = await loadManifests(dir, { validator, revision: false });
    const c = s.containers[0]!;
    expect(c.imageRef).toBe('docker.io/library/busybox:latest');
    expect(c.imageName).toBe('busybox');
    expect(c.metadata).toEqual({ name: 'web', labels: {} });
    expect(c.spec).toEqual({
      image: 'busybox',
      env: {},
      restartPolicy: 'Always',
      network: 'host',
      mounts: [],
      resources: {},
      readOnlyRootfs: false,
      stopSignal: 'SIGTERM',
      stopSignalDefaulted: true, // the image's StopSignal, if it has one, is used instead
      stopGracePeriodMs: 10_000,
      dependsOn: [],
    });
    expect(c.place).toEqual({ file: join(dir, 'a.yaml'), line: 1, col: 1 });
    expect(s.images[0]!.spec).toEqual({ ref: 'docker.io/library/busybox:latest', pullPolicy: 'IfNotPresent' });
    expect(s.volumes[0]!.metadata.name).toBe('v');
  });

  it('turns env values into strings, sizes into bytes, durations into ms, signals into SIG names', async () => {
    const dir = await setOf({
      'a.yaml':
        VOLUME('data') +
        '---\n' +
        container(
          'web',
          [
            '  image: 127.0.0.1:5000/busybox',
            '  env: {N: 42, F: 1.5, B: true, S: "x"}',
            '  user: 1000',
            '  stopSignal: INT',
            '  stopGracePeriod: 1m30s',
            '  resources: {memory: 64Mi, cpus: 0.5, pids: 100}',
            '  mounts:',
            '    - {type: tmpfs, target: /tmp, size: 16Mi}',
            '    - {type: volume, name: data, target: /data, readOnly: true}',
            '    - {type: bind, source: /etc/ssl, target: /etc/ssl}',
          ].join('\n') + '\n',
        ),
    });
    const c = (await loadManifests(dir, { validator, revision: false })).containers[0]!;
    expect(c.imageRef).toBe('127.0.0.1:5000/busybox:latest');
    expect(c.imageName).toBeUndefined();
    expect(c.spec.env).toEqual({ N: '42', F: '1.5', B: 'true', S: 'x' });
    expect(c.spec.user).toBe('1000');
    expect(c.spec.stopSignal).toBe('SIGINT');
    expect(c.spec.stopGracePeriodMs).toBe(90_000);
    expect(c.spec.resources).toEqual({ memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 100 });
    expect(c.spec.mounts).toEqual([
      { type: 'tmpfs', target: '/tmp', sizeBytes: 16 * 1024 * 1024 },
      { type: 'volume', name: 'data', target: '/data', readOnly: true },
      { type: 'bind', source: '/etc/ssl', target: '/etc/ssl', readOnly: false },
    ]);
  });
});

describe('shipped manifests', () => {
  for (const dir of ['manifests', 'examples/kiosk', 'examples/sensor-pipeline', 'examples/airgap']) {
    it(`${dir}/ validates clean and declares what its README promises`, async () => {
      const r = await checkManifests(join(REPO, dir), { validator, revision: false });
      expect(r.problems.map(formatProblem)).toEqual([]);
      expect(r.state!.containers.length).toBeGreaterThan(0);
    });
  }

  it('the demo runs the demo image, a web server with a named volume and a ticker after it', async () => {
    const s = await loadManifests(join(REPO, 'manifests'), { validator, revision: false });
    const web = s.containers.find((c) => c.metadata.name === 'web')!;
    const ticker = s.containers.find((c) => c.metadata.name === 'ticker')!;
    expect(web.imageRef).toBe('localhost/berth-demo/busybox:latest');
    expect(web.spec.network).toBe('host');
    expect(web.spec.mounts.some((m) => m.type === 'volume')).toBe(true);
    expect(ticker.spec.dependsOn).toEqual(['web']);
  });

  it('the sensor pipeline is three containers ordered with dependsOn; airgap pins every image by digest', async () => {
    const sp = await loadManifests(join(REPO, 'examples/sensor-pipeline'), { validator, revision: false });
    expect(Object.fromEntries(sp.containers.map((c) => [c.metadata.name, c.spec.dependsOn]))).toEqual({
      broker: [],
      collector: ['broker'],
      uploader: ['collector'],
    });
    const ag = await loadManifests(join(REPO, 'examples/airgap'), { validator, revision: false });
    for (const img of ag.images) {
      expect(img.spec.ref).toMatch(/@sha256:[a-f0-9]{64}$/);
      expect(img.spec.pullPolicy).toBe('IfNotPresent');
    }
  });

  it('berth validate exits 0 on a good set and 1 on a bad one, printing file:line:col', async () => {
    const good = spawnSync(join(REPO, 'bin/berth'), ['--root', join(base, 'root'), 'validate', '-f', join(REPO, 'examples/kiosk')], { encoding: 'utf8' });
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/valid \(1 file: 2 containers, 2 images, 1 volume\)/);
    const dir = await setOf({ 'bad.yaml': container('web', '  image: busybox:1\n  restartPolicy: always\n') });
    const bad = spawnSync(join(REPO, 'bin/berth'), ['--root', join(base, 'root'), 'validate', '-f', dir], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`${join(dir, 'bad.yaml')}:7:18: spec.restartPolicy: "always" is not one of`);
  });
});

describe('revision', () => {
  it('is the git commit of the manifests, -dirty when modified, undefined outside git', async () => {
    const dir = await setOf({ 'm/web.yaml': container('web', '  image: busybox:1\n') });
    expect(await manifestRevision(join(dir, 'm'))).toBeUndefined();
    const git = (...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { encoding: 'utf8' }).trim();
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'one');
    const head = git('rev-parse', 'HEAD');
    expect(await manifestRevision(join(dir, 'm'))).toBe(head);
    const state = await loadManifests(join(dir, 'm'), { validator });
    expect(state.revision).toBe(head);
    await writeFile(join(dir, 'm', 'web.yaml'), container('web', '  image: busybox:2\n'));
    expect(await manifestRevision(join(dir, 'm'))).toBe(`${head}-dirty`);
  });
});
