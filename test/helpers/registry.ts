/**
 * Real registries for tests, on loopback only.
 *
 * - `startRegistry()`: Debian's `docker-registry` on a free loopback port, storage in a temp dir.
 * - `startFaultProxy({ target })`: a loopback HTTP proxy in front of a registry that can require
 *   token or basic auth (it is then also the token server), answer errors (500, 429 with
 *   Retry-After), corrupt a blob, cut a stream mid-blob, slow it down, ignore Range, and records
 *   every request (method, path, range, status) so tests can assert what the client did.
 *
 * @example
 *   const reg = await startRegistry();
 *   await pushImage(reg.url, 'demo', 'v1', img);          // test/helpers/images.ts
 *   const proxy = await startFaultProxy({ target: reg.url, auth: { kind: 'token', username: 'u', password: 'p' } });
 *   proxy.faults.push({ match: /\/blobs\//, action: { kind: 'cut', afterBytes: 1000 }, times: 1 });
 *   … pull from proxy.host …
 *   expect(proxy.requests.filter((r) => r.range)).toHaveLength(1);
 *   await proxy.stop(); await reg.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningRegistry {
  /** `127.0.0.1:<port>`: use as the registry part of an image reference. */
  host: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Start Debian's docker-registry on a free loopback port; fails loudly if it cannot.
 * With `tls`, it serves HTTPS with that PEM certificate and key (make them with `makeTlsCert`).
 */
export async function startRegistry(
  opts: { tls?: { certFile: string; keyFile: string; client?: { certFile: string; keyFile: string } } } = {},
): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  let lastErr = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      `version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: ${dir}/data}\n  delete: {enabled: true}\nhttp:\n  addr: 127.0.0.1:${port}\n${opts.tls ? `  tls: {certificate: ${opts.tls.certFile}, key: ${opts.tls.keyFile}${opts.tls.client ? `, clientcas: [${opts.tls.client.certFile}]` : ''}}\n` : ''}`,
    );
    const child: ChildProcess = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b) => (stderr += String(b)));
    let exited = false;
    child.once('exit', () => (exited = true));
    const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    const ca = opts.tls ? await readFile(opts.tls.certFile, 'utf8') : undefined;
    for (let i = 0; i < 100 && !exited; i++) {
      try {
        const client = opts.tls?.client ? { cert: await readFile(opts.tls.client.certFile, 'utf8'), key: await readFile(opts.tls.client.keyFile, 'utf8') } : {};
        const status = ca ? await httpsStatus(`${url}/v2/`, { ca, ...client }) : (await fetch(`${url}/v2/`)).status;
        if (status === 200) {
          return {
            host: `127.0.0.1:${port}`,
            url,
            dataDir: join(dir, 'data'),
            stop: async () => {
              if (!exited) {
                child.kill('SIGTERM');
                await new Promise((r) => child.once('exit', r));
              }
              await rm(dir, { recursive: true, force: true });
            },
          };
        }
      } catch {}
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    lastErr = stderr;
  }
  throw new Error(`docker-registry did not start: ${lastErr}`);
}

function httpsStatus(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    httpsGet(url, tls, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

/**
 * A self-signed certificate for 127.0.0.1 (openssl), written to `dir` as `<name>cert.pem` and
 * `<name>key.pem`. Also usable as a client certificate that is its own CA.
 */
export async function makeTlsCert(dir: string, name = ''): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, `${name}cert.pem`);
  const keyFile = join(dir, `${name}key.pem`);
  await new Promise<void>((resolve, reject) => {
    const p = spawn(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    p.stderr!.on('data', (b) => (err += String(b)));
    p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`openssl failed: ${err}`))));
  });
  return { certFile, keyFile };
}

export type FaultAction =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  /** Flip one byte of the response body (at `offset`, default the middle). */
  | { kind: 'corrupt'; offset?: number }
  /** Send `afterBytes` bytes of the body, then destroy the connection. */
  | { kind: 'cut'; afterBytes: number }
  /** Stream the body at about `bytesPerSec`. */
  | { kind: 'slow'; bytesPerSec: number }
  /** Drop the Range header, so the registry answers 200 with the whole blob. */
  | { kind: 'ignoreRange' };

export interface Fault {
  /** Matched against `METHOD path` (e.g. `GET /v2/demo/blobs/sha256:…`). */
  match: RegExp;
  action: FaultAction;
  /** How many requests it applies to (default: all). Decremented on use. */
  times?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  status: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  /** Faults, checked in order; the first matching one with `times` left applies. */
  faults: Fault[];
  requests: RecordedRequest[];
  /** Token requests the token server answered (for token auth), with the scope asked for. */
  tokenRequests: Array<{ method: string; scope?: string; user?: string }>;
  stop(): Promise<void>;
}

export interface ProxyOptions {
  target: string;
  /** Require auth: `token` (Bearer, this proxy is the token server) or `basic`. */
  auth?: { kind: 'token' | 'basic'; username?: string; password?: string; allowAnonymous?: boolean };
}

/** Start a fault-injecting proxy (and optional auth gate) in front of `target`. */
export async function startFaultProxy(opts: ProxyOptions): Promise<FaultProxy> {
  const target = new URL(opts.target);
  const faults: Fault[] = [];
  const requests: RecordedRequest[] = [];
  const tokenRequests: FaultProxy['tokenRequests'] = [];
  const tokens = new Set<string>();
  const port = await freePort();
  const self = `http://127.0.0.1:${port}`;
  const auth = opts.auth;

  const credsOk = (header: string | undefined): { ok: boolean; user?: string } => {
    if (!header?.startsWith('Basic ')) return { ok: false };
    const [u, p] = Buffer.from(header.slice(6), 'base64').toString().split(':');
    return { ok: u === auth?.username && p === auth?.password, user: u };
  };

  const handleToken = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    let scope = url.searchParams.get('scope') ?? undefined;
    let user: string | undefined;
    let ok = auth?.allowAnonymous ?? !auth?.username;
    if (req.method === 'POST') {
      let body = '';
      for await (const c of req) body += String(c);
      const form = new URLSearchParams(body);
      scope = form.get('scope') ?? scope;
      if (form.get('grant_type') === 'password') {
        user = form.get('username') ?? undefined;
        ok = user === auth?.username && form.get('password') === auth?.password;
      } else if (form.get('grant_type') === 'refresh_token') {
        // The test's refresh token is the password.
        user = `refresh:${auth?.username}`;
        ok = form.get('refresh_token') === auth?.password;
      }
    } else if (req.headers.authorization) {
      const c = credsOk(req.headers.authorization);
      ok = c.ok;
      user = c.user;
    }
    tokenRequests.push({ method: req.method!, scope, user });
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const token = randomBytes(16).toString('hex');
    tokens.add(token);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url!, self);
    if (url.pathname === '/token') return handleToken(req, res, url);
    const rec: RecordedRequest = {
      method: req.method!,
      path: url.pathname + url.search,
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: 0,
    };
    requests.push(rec);
    const reply = (status: number, headers: Record<string, string> = {}, body = '') => {
      rec.status = status;
      res.writeHead(status, headers).end(body);
    };
    if (auth && url.pathname.startsWith('/v2')) {
      const h = req.headers.authorization;
      const authorised = auth.kind === 'token' ? h?.startsWith('Bearer ') && tokens.has(h.slice(7)) : credsOk(h).ok;
      if (!authorised) {
        const repo = /^\/v2\/(.+?)\/(manifests|blobs)\//.exec(url.pathname)?.[1];
        const challenge =
          auth.kind === 'token'
            ? `Bearer realm="${self}/token",service="berth-test"${repo ? `,scope="repository:${repo}:pull"` : ''}`
            : 'Basic realm="berth-test"';
        return reply(401, { 'www-authenticate': challenge, 'content-type': 'application/json' }, '{"errors":[{"code":"UNAUTHORIZED"}]}');
      }
    }
    const key = `${req.method} ${url.pathname}`;
    const fault = faults.find((f) => f.match.test(key) && (f.times === undefined || f.times > 0));
    if (fault && fault.times !== undefined) fault.times--;
    const action = fault?.action;
    if (action?.kind === 'status') return reply(action.status, { 'content-type': 'application/json', ...action.headers }, '{"errors":[{"code":"INJECTED"}]}');

    const headers = { ...req.headers, host: target.host };
    delete headers.authorization;
    if (action?.kind === 'ignoreRange') delete headers.range;
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: url.pathname + url.search, headers }, (up) => {
      rec.status = up.statusCode!;
      const outHeaders = { ...up.headers };
      if (outHeaders.location?.startsWith(opts.target)) outHeaders.location = self + outHeaders.location.slice(opts.target.length);
      res.writeHead(up.statusCode!, outHeaders);
      let sent = 0;
      const len = Number(up.headers['content-length'] ?? 0);
      const corruptAt = action?.kind === 'corrupt' ? (action.offset ?? Math.floor(len / 2)) : -1;
      let paused = false;
      up.on('data', (chunk: Buffer) => {
        if (corruptAt >= sent && corruptAt < sent + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[corruptAt - sent] ^= 0xff;
        }
        if (action?.kind === 'cut' && sent + chunk.length >= action.afterBytes) {
          const part = chunk.subarray(0, Math.max(0, action.afterBytes - sent));
          sent += part.length;
          res.write(part, () => {
            up.destroy();
            res.socket?.destroy();
          });
          return;
        }
        sent += chunk.length;
        res.write(chunk);
        if (action?.kind === 'slow' && !paused) {
          paused = true;
          up.pause();
          setTimeout(
            () => {
              paused = false;
              up.resume();
            },
            (chunk.length / action.bytesPerSec) * 1000,
          );
        }
      });
      up.on('end', () => res.end());
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) reply(502);
      else res.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    url: self,
    faults,
    requests,
    tokenRequests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
