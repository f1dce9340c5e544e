/**
 * The idle daemon's footprint (issue 14): what `berth run` loads before its first turn leaves out
 * the packages only some turns need. undici (about 25 MiB in a process on its own) came back once
 * through a static import chain (containers → successor-ready → health probe); this catches that.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const top = new URL('../../', import.meta.url);

/** Loaded only when a turn needs them: http probes and registries, metrics, a terminal, update windows, Ajv (never). */
const NOT_AT_IDLE = ['undici', 'prom-client', 'pino-pretty', 'temporal-polyfill', 'ajv/dist/core.js', 'ajv/dist/compile/'];

it('berth run loads neither undici, prom-client, pino-pretty, temporal-polyfill nor Ajv before its first turn', async () => {
  // What src/cli/main.ts and the run verb load (src/cli/run.ts imports these three when it starts).
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
    for (const m of ['src/cli/main.ts', 'src/cli/daemon-deps.ts', 'src/reconcile/daemon.ts', 'src/reconcile/start-up-recovery.ts']) await import(new URL(m, ${JSON.stringify(top.href)}).href);
    console.log(JSON.stringify(loaded.filter((u) => u.includes('/node_modules/'))));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { cwd: top.pathname });
  const loaded = JSON.parse(stdout.trim().split('\n').at(-1)!) as string[];
  expect(loaded.length).toBeGreaterThan(10); // yaml, pino, commander… were seen
  expect(loaded.filter((u) => NOT_AT_IDLE.some((p) => u.includes(`/node_modules/${p}`)))).toEqual([]);
});
