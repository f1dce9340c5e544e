/**
 * A fleet from one repository (src/manifest/fleet.ts through the loader): selectors, overlays in
 * the order base/ → groups/ → devices/<name>/, and ${device.…} substitution give each device its
 * own set: three devices in a table; problems keep their file:line:col; an undefined variable is a
 * problem at its place; another device's directory is never read; without a device nothing changes.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkManifests } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { layerOf, matchSelector, mergePatch } from '../../src/manifest/fleet.ts';

let repo: string;

const container = (name: string, extra = '', env = '') => `apiVersion: berth.dev/v1alpha1
kind: Container
${extra}metadata:
  name: ${name}
spec:
  image: busybox:latest
  command: [/bin/sh, -c, "sleep 1000"]
  env:
    DEVICE: "\${device.name}"${env}
`;

const FILES: Record<string, string> = {
  'base/app.yaml': `${container('web', '', '\n    SITE: "${device.labels.site}"\n    LITERAL: "$${device.name}"')}---
${container('camera', 'selector:\n  matchLabels:\n    model: rpi4\n')}`,
  // groups/ patches base/ although "devices" sorts before "groups": the layer decides, not the name.
  'groups/canary.yaml': `apiVersion: berth.dev/v1alpha1
kind: Container
selector:
  matchExpressions:
    - { key: ring, operator: In, values: [canary] }
metadata:
  name: web
spec:
  env:
    FEATURE: "on"
`,
  'groups/berlin.yaml': container('kiosk', 'selector:\n  matchLabels: { site: berlin }\n  matchExpressions:\n    - { key: broken, operator: DoesNotExist }\n'),
  'devices/kiosk-7/web.yaml': `apiVersion: berth.dev/v1alpha1
kind: Container
metadata:
  name: web
spec:
  env:
    EXTRA: "7"
    SITE: null
`,
  'devices/other/junk.yaml': 'this: is: not: yaml: [\n',
};

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), 'berth-fleet-'));
  for (const [p, text] of Object.entries(FILES)) {
    await mkdir(dirname(join(repo, p)), { recursive: true });
    await writeFile(join(repo, p), text);
  }
});

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe('a fleet from one repo', () => {
  it.each([
    {
      name: 'kiosk-7',
      labels: { site: 'berlin', model: 'rpi4', ring: 'canary' },
      containers: ['camera', 'kiosk', 'web'],
      webEnv: { DEVICE: 'kiosk-7', LITERAL: '${device.name}', FEATURE: 'on', EXTRA: '7' },
      webFrom: ['base/app.yaml', 'groups/canary.yaml', 'devices/kiosk-7/web.yaml'],
    },
    {
      name: 'sensor-1',
      labels: { site: 'paris', model: 'x86' },
      containers: ['web'],
      webEnv: { DEVICE: 'sensor-1', SITE: 'paris', LITERAL: '${device.name}' },
      webFrom: ['base/app.yaml'],
    },
    {
      name: 'sensor-2',
      labels: { site: 'berlin', model: 'rpi4', ring: 'stable', broken: 'yes' },
      containers: ['camera', 'web'],
      webEnv: { DEVICE: 'sensor-2', SITE: 'berlin', LITERAL: '${device.name}' },
      webFrom: ['base/app.yaml'],
    },
  ])('device $name runs $containers', async ({ name, labels, containers, webEnv, webFrom }) => {
    const r = await checkManifests(repo, { revision: false, device: { name, labels: labels as Record<string, string> } });
    expect(r.problems.map(formatProblem)).toEqual([]);
    expect(r.state!.containers.map((c) => c.metadata.name).sort()).toEqual(containers);
    const web = r.state!.containers.find((c) => c.metadata.name === 'web')!;
    expect(web.spec.env).toEqual(webEnv);
    expect(web.spec.command).toEqual(['/bin/sh', '-c', 'sleep 1000']); // a patch merges: what it does not name stays
    expect(r.origins!.get('Container/web')).toEqual(webFrom.map((p) => join(repo, p)));
  });

  it('an undefined variable is a problem at its place, never an empty string', async () => {
    const r = await checkManifests(join(repo, 'base'), { revision: false, device: { name: 'x', labels: {} } });
    expect(r.state).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      `${join(repo, 'base/app.yaml')}:10:12: \${device.labels.site} is not defined for device x (defined: device.name, no labels)`,
    ]);
  });

  it('a problem in a document that is not patched keeps its own line; a bad selector is placed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-fleet-problems-'));
    try {
      await writeFile(
        join(dir, 'a.yaml'),
        `${container('one')}---\n${container('two', 'selector:\n  matchExpressions:\n    - { key: site, operator: Near }\n')}---\n${container('three').replace('spec:\n', 'spec:\n  colour: red\n')}`,
      );
      const r = await checkManifests(dir, { revision: false, device: { name: 'd', labels: { site: 'x' } } });
      const file = join(dir, 'a.yaml');
      expect(r.problems.map(formatProblem)).toEqual([
        `${file}:15:30: operator must be In, NotIn, Exists or DoesNotExist (got "Near")`,
        expect.stringMatching(new RegExp(`^${file}:29:3: spec: unknown field "colour"`)),
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('without a device, files are read as written: a selector is an unknown field', async () => {
    const r = await checkManifests(join(repo, 'base'), { revision: false });
    expect(r.problems.map(formatProblem).join('\n')).toMatch(/selector/);
  });

  it('selector semantics and merge patch (table)', () => {
    const l = { site: 'berlin', ring: 'canary' };
    expect(matchSelector({}, l)).toBe(true);
    expect(matchSelector({ matchLabels: { site: 'berlin' } }, l)).toBe(true);
    expect(matchSelector({ matchLabels: { site: 'paris' } }, l)).toBe(false);
    expect(matchSelector({ matchExpressions: [{ key: 'ring', operator: 'NotIn', values: ['canary'] }] }, l)).toBe(false);
    expect(matchSelector({ matchExpressions: [{ key: 'model', operator: 'NotIn', values: ['rpi4'] }] }, l)).toBe(true);
    expect(matchSelector({ matchExpressions: [{ key: 'model', operator: 'Exists' }] }, l)).toBe(false);
    expect(matchSelector({ matchExpressions: [{ key: 'model', operator: 'DoesNotExist' }] }, l)).toBe(true);
    expect(matchSelector({ matchExpressions: [{ key: 'model', operator: 'In', values: [] }] }, l)).toMatchObject({ path: ['matchExpressions', 0, 'values'] });
    expect(mergePatch({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2] }, d: null })).toEqual({ a: { b: 1, c: [2] } });
    expect([
      layerOf('base/x.yaml', 'k'),
      layerOf('top.yaml', 'k'),
      layerOf('groups/g/x.yaml', 'k'),
      layerOf('devices/k/x.yaml', 'k'),
      layerOf('devices/j/x.yaml', 'k'),
    ]).toEqual([0, 0, 1, 2, undefined]);
  });
});
