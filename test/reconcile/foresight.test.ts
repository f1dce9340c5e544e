/** `berth plan`'s foresight (no root): which steps are checked, and how a refusal reads. */
import { describe, expect, it } from 'vitest';
import type { ContainerDoc } from '../../src/manifest/types.ts';
import { withForesight } from '../../src/reconcile/foresight.ts';
import type { Step } from '../../src/reconcile/types.ts';

const doc = (name: string) => ({ metadata: { name } }) as ContainerDoc;
const steps: Step[] = [
  { kind: 'pull', id: 'pull:x', after: [], ref: 'x', name: 'x', repair: false, reason: 'x: pull' },
  {
    kind: 'recreate',
    id: 'container:a',
    after: [],
    container: 'a',
    doc: doc('a'),
    spec: {} as never,
    changes: ['command changed'],
    reason: 'a: recreate (command changed)',
  },
  { kind: 'create', id: 'container:b', after: ['pull:x'], container: 'b', doc: doc('b'), spec: {} as never, reason: 'b: create (not present)' },
  { kind: 'create', id: 'container:c', after: [], container: 'c', doc: doc('c'), spec: {} as never, reason: 'c: create (not present)' },
];

describe('withForesight', () => {
  it('a refused create or recreate becomes a wait that says why; a step after a pull is not checked', async () => {
    const asked: string[] = [];
    const out = await withForesight(steps, async (d) => {
      asked.push(d.metadata.name);
      return d.metadata.name === 'a' ? 'command "/nope" not found in image app' : undefined;
    });
    expect(asked).toEqual(['a', 'c']); // b waits for a pull: its image is not the one it will run
    expect(out.map((s) => [s.id, s.kind, s.reason])).toEqual([
      ['pull:x', 'pull', 'x: pull'],
      ['container:a', 'wait', 'a: recreate blocked (command "/nope" not found in image app)'],
      ['container:b', 'create', 'b: create (not present)'],
      ['container:c', 'create', 'c: create (not present)'],
    ]);
  });
});
