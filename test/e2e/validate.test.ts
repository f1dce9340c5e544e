/**
 * Every manifest set shipped (manifests/ and each examples/ dir holding YAML) passes `berth
 * validate` through the CLI. Dirs are found, not listed, so a new example is checked too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { E2eRoot, REPO } from '../helpers/e2e.ts';

let e: E2eRoot;
beforeAll(async () => {
  e = await E2eRoot.create('validate');
});
afterAll(async () => e?.cleanup());

async function manifestSets(): Promise<string[]> {
  const dirs = ['manifests', ...(await readdir(join(REPO, 'examples'))).map((d) => `examples/${d}`)];
  const sets: string[] = [];
  for (const d of dirs) {
    const files = await readdir(join(REPO, d)).catch(() => [] as string[]);
    if (files.some((f) => /\.ya?ml$/.test(f))) sets.push(d);
  }
  return sets;
}

describe('shipped manifests', () => {
  it('manifests/ and every examples/ set pass berth validate', async () => {
    const sets = await manifestSets();
    expect(sets).toContain('manifests');
    expect(sets.length).toBeGreaterThanOrEqual(4);
    const results = await Promise.all(sets.map(async (d) => ({ d, r: await e.berth('validate', '-f', join(REPO, d)) })));
    for (const { d, r } of results) {
      expect(r.code, `${d}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/valid \(/);
    }
  });
});
