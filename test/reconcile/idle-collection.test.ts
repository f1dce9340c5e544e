import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { IdleCollection, type ExposedGc } from '../../src/reconcile/idle-collection.ts';

const LAST_RESORT = { type: 'major', execution: 'sync', flavor: 'last-resort' };

it('collects on the first idle turn after work (start-up counts), then at most every everyMs', () => {
  const calls: Parameters<ExposedGc>[0][] = [];
  let now = 0;
  const idle = new IdleCollection({ gc: (o) => calls.push(o), everyMs: 15_000, now: () => now });
  const turn = (at: number, didWork: boolean) => {
    now = at;
    return idle.afterTurn(didWork);
  };
  expect(turn(0, false)).toBe(true); // start-up was work
  expect(turn(5_000, false)).toBe(false); // a recheck soon after: not again
  expect(turn(6_000, true)).toBe(false); // work: never during it
  expect(turn(7_000, false)).toBe(true); // the first idle turn after work
  expect(turn(20_000, false)).toBe(false);
  expect(turn(22_000, false)).toBe(true); // everyMs after the last
  expect(calls).toEqual([LAST_RESORT, LAST_RESORT, LAST_RESORT]);
});

it('does nothing without an exposed gc()', () => {
  expect(new IdleCollection({ gc: undefined, everyMs: 0 }).afterTurn(false)).toBe(false);
});

it("V8's gc() under --expose-gc takes these options and flushes the bytecode of functions not running", async () => {
  // Functions compiled and run once: a last-resort collection drops their bytecode, which shows as
  // less heap used. Fails if the options are not understood (a regular collection keeps young bytecode).
  const script = `
    import v8 from 'node:v8';
    const { IdleCollection } = await import('./src/reconcile/idle-collection.ts');
    const body = Array.from({ length: 3000 }, (_, i) => 'x = (x * 31 + ' + i + ') % 1000003;').join('\\n');
    const fns = Array.from({ length: 20 }, (_, i) => new Function('let x = ' + i + ';\\n' + body + '\\nreturn x;'));
    for (const f of fns) f();
    globalThis.gc();
    const before = v8.getHeapStatistics().used_heap_size;
    const collected = new IdleCollection({ everyMs: 0 }).afterTurn(false);
    console.log(JSON.stringify({ collected, freed: before - v8.getHeapStatistics().used_heap_size }));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--no-opt', '--no-maglev', '--no-sparkplug', '--input-type=module', '-e', script],
    {
      cwd: new URL('../../', import.meta.url).pathname,
    },
  );
  const { collected, freed } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { collected: boolean; freed: number };
  expect(collected).toBe(true);
  expect(freed).toBeGreaterThan(500_000);
});
