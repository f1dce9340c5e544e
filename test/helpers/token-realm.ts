/**
 * A token server (an OAuth2-ish `/token` realm, HTTP or HTTPS) on its own loopback port, and a
 * gate for startGateProxy that lets through only the Bearer tokens it issued and otherwise
 * answers 401 with a challenge naming it. Together: a registry whose realm is another host, as
 * with Docker Hub (registry-1.docker.io → auth.docker.io), or as a hostile 401 would write it.
 * The realm records every request, Authorization header and form included, so a test can assert
 * that a password never reached it.
 *
 * @example
 *   const realm = await startTokenRealm({ username: 'edge', password: 'pw' });
 *   const gate = await startGateProxy({ target: reg.url, gate: bearerGate(realm) });
 *   … resolve `${gate.host}/oci:v1` …
 *   expect(realm.requests.every((r) => !r.authorization && !r.form.has('password'))).toBe(true);
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { freePort } from './registry.ts';
import { closeServer, type Gate } from './fault-proxy-gate.ts';

export interface RealmRequest {
  method: string;
  authorization?: string;
  /** The POST form, or the GET query. */
  form: URLSearchParams;
}

export interface TokenRealm {
  /** `http(s)://127.0.0.1:<port>/token` */
  realm: string;
  requests: RealmRequest[];
  /** Tokens issued (what bearerGate accepts). */
  tokens: Set<string>;
  stop(): Promise<void>;
}

export interface TokenRealmOptions {
  username?: string;
  password?: string;
  /** Issue tokens without credentials (default true). */
  allowAnonymous?: boolean;
  /** Serve HTTPS with this certificate (makeTlsCert in registry.ts). */
  tls?: { certFile: string; keyFile: string };
  /** Bytes of filler in each token answer (a realm that sends too much). */
  padding?: number;
  /** Answer this token instead of a fresh random one (only this one is then accepted). */
  token?: string;
}

export async function startTokenRealm(opts: TokenRealmOptions = {}): Promise<TokenRealm> {
  const requests: RealmRequest[] = [];
  const tokens = new Set<string>();
  const port = await freePort();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const c of req) body += String(c);
    const url = new URL(req.url!, 'http://realm');
    const form = req.method === 'POST' ? new URLSearchParams(body) : url.searchParams;
    requests.push({ method: req.method!, authorization: req.headers.authorization, form });
    let user: string | undefined;
    let password: string | undefined;
    if (form.get('grant_type') === 'password') [user, password] = [form.get('username') ?? '', form.get('password') ?? ''];
    else if (req.headers.authorization?.startsWith('Basic '))
      [user, password] = Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':');
    const ok = user === undefined ? (opts.allowAnonymous ?? true) : user === opts.username && password === opts.password;
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const token = opts.token ?? randomBytes(16).toString('hex');
    tokens.add(token);
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, expires_in: 300, ...(opts.padding ? { padding: 'x'.repeat(opts.padding) } : {}) }));
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: await readFile(opts.tls.certFile), key: await readFile(opts.tls.keyFile) }, handle)
    : createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    realm: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    requests,
    tokens,
    stop: () => closeServer(server),
  };
}

/**
 * A gate (fault-proxy-gate.ts) that forwards only requests carrying a token `realm` issued; its
 * challenge asks for `scope` (default: pull of the repository in the path).
 */
export function bearerGate(realm: TokenRealm, scope?: string): Gate {
  return (req) => {
    const auth = req.headers.authorization;
    if (!req.path.startsWith('/v2') || (auth?.startsWith('Bearer ') && realm.tokens.has(auth.slice(7)))) return undefined;
    const repo = /^\/v2\/(.+?)\/(manifests|blobs)\//.exec(req.path)?.[1];
    const asked = scope ?? (repo ? `repository:${repo}:pull` : undefined);
    return { status: 401, headers: { 'www-authenticate': `Bearer realm="${realm.realm}",service="berth-test"${asked ? `,scope="${asked}"` : ''}` } };
  };
}
