/**
 * A host port something else holds blocks only the container that publishes it, in the plan
 * itself (issue 12): the pure plan() reads the holders observe() found (`portsHeld`), holds the
 * create or recreate back with the holder's name, and leaves the old version running. A holder
 * that the plan removes does not block. And observe's matching of host sockets to published ports.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { describeHolder, foreignHolder, holdersOf } from '../../src/network/port-holder.ts';
import { parsePort } from '../../src/network/ports.ts';
import { describePlan, plan } from '../../src/reconcile/plan.ts';
import type { ActualContainer, ActualState } from '../../src/reconcile/types.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const DIGEST = `sha256:${'a'.repeat(64)}`;
const REF = '127.0.0.1:5000/busybox:latest';

function desiredOf(containers: Record<string, string>): DesiredState {
  const text = Object.entries(containers)
    .map(([name, extra]) => `apiVersion: berth.dev/v1alpha1\nkind: Container\nmetadata: {name: ${name}}\nspec: {image: "${REF}"${extra}}\n`)
    .join('---\n');
  const r = parseManifestSources([{ file: 'm.yaml', text }], validator);
  expect(r.problems).toEqual([]);
  return r.state!;
}

function running(desired: DesiredState, name: string): ActualContainer {
  const doc = desired.containers.find((c) => c.metadata.name === name)!;
  return {
    name,
    specHash: containerSpecHash(doc, DIGEST),
    imageRef: doc.imageRef,
    imageDigest: DIGEST,
    appliedSpec: normaliseContainerSpec(doc),
    state: 'running',
    backoffStreak: 0,
  };
}

const actual = (containers: ActualContainer[], portsHeld?: ActualState['portsHeld']): ActualState => ({
  images: [{ ref: `${REF}`, targetDigest: DIGEST, manifestDigest: DIGEST, blobsPresent: true, unpacked: true }],
  containers,
  volumes: [],
  unreachableRegistries: [],
  ...(portsHeld ? { portsHeld } : {}),
});

describe('a held host port in the plan', () => {
  it('blocks the create of the container that publishes it, naming the holder; the others go ahead', () => {
    const d = desiredOf({ web: ', ports: ["8080:80"]', api: ', ports: ["9000:9000"]', after: ', dependsOn: [web]' });
    const steps = plan(d, actual([], { web: { reason: 'port 8080 in use by pid 412 nginx' } }), NOW);
    expect(describePlan(steps)).toBe(
      ['+ api: create (not present)', '… web: blocked (port 8080 in use by pid 412 nginx)', '… after: create waits for web (not running)'].join('\n'),
    );
  });

  it('holds a recreate back: the old version keeps running', () => {
    const before = desiredOf({ web: ', ports: ["8080:80"]', other: '' });
    const after = desiredOf({ web: ', ports: ["8080:80"], env: {A: "2"}', other: '' });
    const steps = plan(
      after,
      actual([running(before, 'web'), running(before, 'other')], { web: { reason: 'port 8080 in use by container other (8080:80/tcp)', container: 'other' } }),
      NOW,
    );
    expect(steps.map((s) => [s.kind, s.reason])).toEqual([['wait', 'web: blocked (port 8080 in use by container other (8080:80/tcp))']]);
  });

  it('is not held by a container the plan removes (the create comes after the removal)', () => {
    const old = desiredOf({ old: ', ports: ["8080:80"]' });
    const d = desiredOf({ web: ', ports: ["8080:80"]' });
    const steps = plan(d, actual([running(old, 'old')], { web: { reason: 'port 8080 in use by container old (8080:80/tcp)', container: 'old' } }), NOW);
    const create = steps.find((s) => s.id === 'container:web')!;
    expect(create.kind).toBe('create');
    expect(create.after).toContain('remove:old');
  });

  it('does not touch a container that runs as wanted', () => {
    const d = desiredOf({ web: ', ports: ["8080:80"]' });
    expect(plan(d, actual([running(d, 'web')], { web: { reason: 'port 8080 in use by pid 1 x' } }), NOW)).toEqual([]);
  });
});

describe('which host socket holds a published port', () => {
  const sockets = [
    { address: '127.0.0.1', port: 8080, pid: 412, command: 'nginx' },
    { address: '0.0.0.0', port: 9000, pid: 7, command: 'api' },
    { address: '[::1]', port: 5353 },
  ];
  const TABLE: Array<[string, string, number | undefined]> = [
    ['the same port on every address', '8080:80', 412],
    ['the same port and address', '127.0.0.1:8080:80', 412],
    ["another address than the socket's", '127.0.0.2:8080:80', undefined],
    ['a socket on every address holds each one', '192.168.1.5:9000:9000', 7],
    ['a range that covers the port', '8079-8081:80-82', 412],
    ['a range beside it', '8081-8082:80-81', undefined],
    ['an IPv6 address', '[::1]:5353:53', -1],
  ];
  for (const [what, port, pid] of TABLE) {
    it(what, () => {
      const h = holdersOf(parsePort(port, 'ports[0]'), sockets)[0];
      expect(h === undefined ? undefined : (h.pid ?? -1)).toBe(pid);
    });
  }
});

describe("a holder that is a container's own process", () => {
  const sockets = [
    { address: '0.0.0.0', port: 8080, pid: 10, command: 'httpd' },
    { address: '127.0.0.1', port: 8080, pid: 20, command: 'nginx' },
  ];
  const owners: Record<number, string> = { 10: 'web', 20: 'proxy' };
  const ownerOf = async (pid: number) => owners[pid];

  it("does not hold the container itself (its old version stops first); another container's is named", async () => {
    const found = await foreignHolder(parsePort('8080:80', 'ports[0]'), sockets, 'web', ownerOf);
    expect(found).toEqual({ holder: sockets[1], owner: 'proxy' });
    expect(describeHolder(found!.holder, found!.owner)).toBe('port 8080 in use by pid 20 nginx (container proxy)');
    expect(await foreignHolder(parsePort('8080:80', 'ports[0]'), sockets.slice(0, 1), 'web', ownerOf)).toBeUndefined();
  });

  it('without owners, every holder counts', async () => {
    expect(await foreignHolder(parsePort('8080:80', 'ports[0]'), sockets, 'web')).toEqual({ holder: sockets[0] });
  });
});
