import { describe, expect, test } from 'vitest';
import { mark, unreachable } from '../../src/gc/mark.ts';

type Graph = Record<string, string[]>;
const refsOf = (g: Graph) => (n: string) => g[n] ?? [];

describe('mark', () => {
  const cases: Array<{ name: string; graph: Graph; roots: string[]; reachable: string[] }> = [
    { name: 'no roots marks nothing', graph: { a: ['b'] }, roots: [], reachable: [] },
    { name: 'a root with no references marks itself', graph: {}, roots: ['a'], reachable: ['a'] },
    {
      name: 'image → index → manifest → config + layers',
      graph: { 'image:x': ['blob:idx'], 'blob:idx': ['blob:m1', 'blob:m2'], 'blob:m1': ['blob:cfg', 'blob:l1', 'blob:l2'] },
      roots: ['image:x'],
      reachable: ['image:x', 'blob:idx', 'blob:m1', 'blob:m2', 'blob:cfg', 'blob:l1', 'blob:l2'],
    },
    {
      name: 'unreferenced nodes stay white',
      graph: { r: ['a'], orphan: ['a', 'b'], b: ['c'] },
      roots: ['r'],
      reachable: ['r', 'a'],
    },
    {
      name: 'shared children are marked once and cycles terminate',
      graph: { r1: ['s'], r2: ['s'], s: ['t'], t: ['s', 'r1'] },
      roots: ['r1', 'r2', 'r1'],
      reachable: ['r1', 'r2', 's', 't'],
    },
    {
      name: 'snapshot → parent chains are followed to the base',
      graph: { 'c:web': ['s:rw'], 's:rw': ['s:3'], 's:3': ['s:2'], 's:2': ['s:1'] },
      roots: ['c:web'],
      reachable: ['c:web', 's:rw', 's:3', 's:2', 's:1'],
    },
    {
      name: 'a reference to a node that does not exist is still marked (harmless)',
      graph: { r: ['ghost'] },
      roots: ['r'],
      reachable: ['r', 'ghost'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      expect([...mark(c.roots, refsOf(c.graph))].sort()).toEqual([...c.reachable].sort());
    });
  }

  test('a chain 200 000 long does not overflow the stack', () => {
    const n = 200_000;
    const reachable = mark(['0'], (x) => (Number(x) < n - 1 ? [String(Number(x) + 1)] : []));
    expect(reachable.size).toBe(n);
  });

  test('each node is expanded exactly once', () => {
    const calls = new Map<string, number>();
    const g: Graph = { a: ['b', 'c'], b: ['c', 'd'], c: ['d', 'a'], d: ['a'] };
    mark(['a', 'b'], (n) => {
      calls.set(n, (calls.get(n) ?? 0) + 1);
      return g[n] ?? [];
    });
    expect(Object.fromEntries(calls)).toEqual({ a: 1, b: 1, c: 1, d: 1 });
  });
});

describe('unreachable', () => {
  test('lists what the mark did not reach, in input order', () => {
    expect(unreachable(['x', 'a', 'y', 'b'], new Set(['a', 'b']))).toEqual(['x', 'y']);
  });
});
