/**
 * The idle daemon's footprint (issue 14): what `berth run` loads before its first turn leaves out
 * the packages only some turns need. undici (about 25 MiB in a process on its own) came back once
 * through a static import chain (containers → successor-ready → health probe); this catches that.
 */
import { expect, it } from 'vitest';
import { packagesLoadedBy } from '../helpers/loaded-modules.ts';

/** Loaded only when a turn needs them: http probes and registries, metrics, a terminal, update windows, Ajv (never). */
const NOT_AT_IDLE = ['undici', 'prom-client', 'pino-pretty', 'temporal-polyfill', 'ajv/dist/core.js', 'ajv/dist/compile/'];

it('berth run loads neither undici, prom-client, pino-pretty, temporal-polyfill nor Ajv before its first turn', async () => {
  // What src/cli/main.ts and the run verb load (src/cli/run.ts imports these three when it starts).
  const entries = ['src/cli/main.ts', 'src/cli/daemon-deps.ts', 'src/reconcile/daemon.ts', 'src/reconcile/start-up-recovery.ts'];
  const loaded = await packagesLoadedBy(entries.map((m) => `await import('./${m}');`).join('\n'));
  expect(loaded.length).toBeGreaterThan(10); // yaml, pino, commander… were seen
  expect(loaded.filter((u) => NOT_AT_IDLE.some((p) => u.includes(`/node_modules/${p}`)))).toEqual([]);
});
