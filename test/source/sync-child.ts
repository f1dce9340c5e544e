/** One GitSource sync in a process of its own, for the crash test to kill -9: `sync-child.ts ROOT URL ALLOWED_SIGNERS`. */
import { createLogger } from '../../src/log.ts';
import { GitSource } from '../../src/source/git.ts';

const [root, url, allowedSigners] = process.argv.slice(2) as [string, string, string];
const source = new GitSource({
  root,
  config: { url, ref: 'main', path: 'devices', intervalMs: 60_000, allowRewind: false, verify: { mode: 'ssh', allowedSigners } },
  log: createLogger({ level: 'silent' }),
});
process.stdout.write('syncing\n');
const s = await source.sync(new AbortController().signal);
process.stdout.write(`${JSON.stringify(s)}\n`);
