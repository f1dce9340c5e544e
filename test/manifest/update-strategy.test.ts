/** `update.strategy` in manifests (issue 9): the three strategies, and start-first's refusals at their place. */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const web = (lines: string[]) =>
  ['apiVersion: berth.dev/v1alpha1', 'kind: Container', 'metadata: {name: web}', 'spec:', '  image: busybox:1.37', ...lines.map((l) => `  ${l}`)].join('\n') +
  '\n';
const load = (text: string) => parseManifestSources([{ file: 'web.yaml', text }], validator);

describe('update.strategy', () => {
  it.each(['download-then-kill', 'start-first', 'kill-then-download'])('%s is taken', (strategy) => {
    const r = load(web([`update: {strategy: ${strategy}}`]));
    expect(r.problems).toEqual([]);
    expect(r.state!.containers[0]!.spec.update?.strategy).toBe(strategy);
  });

  it('an unknown strategy is refused at its place', () => {
    const r = load(web(['update: {strategy: rolling}']));
    expect(r.problems.map(formatProblem).join('\n')).toMatch(/web\.yaml:6:\d+.*strategy/);
  });

  it.each([
    ['ports', ['ports: ["8080:80"]'], /cannot publish ports/],
    ['networks', ['networks: [berth]'], /not supported on networks/],
    ['an http check', ['healthcheck: {http: {port: 8080}}'], /needs an exec health check/],
  ])('start-first with %s is refused at the strategy, with the reason', (_what, extra, reason) => {
    const r = load(web([...extra, 'update: {strategy: start-first}']));
    const text = r.problems.map(formatProblem).join('\n');
    expect(text).toMatch(/web\.yaml:7:\d+: spec\.update\.strategy: start-first/);
    expect(text).toMatch(reason);
  });

  it('start-first with an exec check is taken', () => {
    expect(load(web(['healthcheck: {exec: [/bin/true]}', 'update: {strategy: start-first}'])).problems).toEqual([]);
  });
});
