/**
 * Which files under node_modules a fresh node loads while it runs `body` (an ES module body with
 * top-level await; relative imports start at the checkout's top): for tests that keep a package out of a
 * process (issue 14, idle memory).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const CHECKOUT = new URL('../../', import.meta.url);

export async function packagesLoadedBy(body: string): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
    ${body}
    console.log(JSON.stringify(loaded.filter((u) => u.includes('/node_modules/'))));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
    cwd: CHECKOUT.pathname,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as string[];
}
