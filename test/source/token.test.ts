/**
 * `token_file` for HTTP(S) remotes: the token goes to git as an HTTP header through git's
 * environment (never argv, never a log or the status), scoped to the configured URL. Served by a
 * loopback HTTP server that demands the token and runs Debian's `git http-backend` (CGI).
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { GitSource } from '../../src/source/git.ts';
import { GitFixture } from './git-fixture.ts';

const TOKEN = 'tok-3c1b7e5f9a';
let f: GitFixture;
let root: string;
let server: Server;
let url: string;
const seen: string[] = [];

beforeAll(async () => {
  f = await GitFixture.create();
  root = await mkdtemp(join(tmpdir(), 'berth-source-token-'));
  await writeFile(join(f.dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth);
    if (auth !== `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fleet"' }).end();
      return;
    }
    const u = new URL(req.url!, 'http://x');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH!,
        GIT_PROJECT_ROOT: dirname(f.bare),
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: u.pathname,
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method!,
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.pipe(
      new Writable({
        write(chunk: Buffer, _enc, done) {
          if (headersDone) return res.write(chunk, () => done());
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return done();
          headersDone = true;
          let status = 200;
          for (const line of head.subarray(0, end).toString().split('\r\n')) {
            const [k, ...v] = line.split(': ');
            if (k!.toLowerCase() === 'status') status = Number(v.join(': ').split(' ')[0]);
            else res.setHeader(k!, v.join(': '));
          }
          res.writeHead(status);
          res.write(head.subarray(end + 4), () => done());
        },
        final(done) {
          res.end();
          done();
        },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/fleet.git`;
});

afterAll(async () => {
  server?.close();
  await f?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

function source(tokenFile?: string, logs?: string[]) {
  const destination = new Writable({ write: (c, _e, done) => (logs?.push(String(c)), done()) });
  return new GitSource({
    root,
    config: { url, ref: 'main', path: '', intervalMs: 60_000, allowRewind: false, tokenFile, verify: { mode: 'ssh', allowedSigners: f.allowedSigners } },
    log: createLogger({ level: 'debug', destination }),
  });
}

describe('token_file', () => {
  it('without the token the remote refuses: a condition, nothing applied', async () => {
    await f.commit({ 'web.yaml': 'v: 1\n' });
    const s = await source().sync(new AbortController().signal);
    expect(s).toMatchObject({ state: 'Stalled', reason: 'Unreachable', changed: false });
    expect(s.applied).toBeUndefined();
  });

  it('with it the commit is fetched and applied; the token is in no log and no status', async () => {
    const logs: string[] = [];
    const s = await source(join(f.dir, 'token'), logs).sync(new AbortController().signal);
    expect(s).toMatchObject({ state: 'Ready', reason: 'Applied', changed: true });
    expect(seen.some((a) => a.startsWith('Basic '))).toBe(true);
    const everything = JSON.stringify(s) + logs.join('');
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(Buffer.from(`x-access-token:${TOKEN}`).toString('base64'));
  });
});
