/**
 * Registry authentication from `WWW-Authenticate` challenges, as containerd's docker authorizer
 * does: Bearer → a token from the realm (POST OAuth2 password grant with credentials, falling back
 * to GET with basic auth; refresh-token grant with an identity token; anonymous GET without), cached per host and scope until it expires;
 * Basic → the credentials on every request to that host. Tokens and passwords are never logged.
 *
 * The realm is not trusted as it comes: credentials go to it only as realm-policy.ts allows, else
 * the token is asked for anonymously (what a registry without credentials would get: public images
 * keep working, and a private one fails naming the realm and the rule). Token requests use the
 * endpoint's TLS settings, follow no redirects (a redirect could carry the password form
 * elsewhere) and read at most MAX_TOKEN_BODY bytes.
 */
import type { Dispatcher } from 'undici';
import { request } from './http-client.ts';
import { corrupt, unavailable, BerthError, resourceExhausted } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { CredentialStore, Credentials } from './credentials.ts';
import { readBounded } from './read-bounded.ts';
import { credentialsAllowedAt, parseRealm } from './realm-policy.ts';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a `WWW-Authenticate` header value (possibly several challenges). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][\w-]*)(?:\s+|$)((?:[\w-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(header)) !== null && m[0] !== '') {
    const params: Record<string, string> = {};
    const pre = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    for (let p = pre.exec(m[2] ?? ''); p; p = pre.exec(m[2] ?? '')) {
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    }
    out.push({ scheme: m[1]!.toLowerCase(), params });
  }
  return out;
}

/** Largest token response read (a token is a few KiB; a hostile realm could stream forever). */
export const MAX_TOKEN_BODY = 1 << 20;

/** RFC 6750 b64token. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** A pull-only repository scope: `repository:<name>:pull`. */
const PULL_SCOPE = /^repository:[^:\s]+:pull$/;

/** The endpoint asking for auth. */
export interface AuthTarget {
  /** `host[:port]` of the endpoint (tokens and challenges are cached per host). */
  host: string;
  /** The host whose credentials and config apply (the registry, or a mirror's own host). */
  credHost: string;
  /** The endpoint's TLS settings, without redirects: token requests go through it. */
  dispatcher: Dispatcher;
}

export interface AuthorizerOptions {
  /** The config's `auth_realms` for a credentials host. */
  allowedRealms(credHost: string): readonly string[];
  log?: Logger;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

export class Authorizer {
  private readonly creds: CredentialStore;
  private readonly opts: AuthorizerOptions;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly basic = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** The last challenge per host, so new scopes fetch tokens without a 401 round trip first. */
  private readonly challenges = new Map<string, Challenge>();
  /** Why credentials were kept from a host's realm (for access-denied errors), per host. */
  private readonly withheld = new Map<string, string>();

  constructor(creds: CredentialStore, opts: AuthorizerOptions) {
    this.creds = creds;
    this.opts = opts;
  }

  /** Why the credentials for `host` were not sent to its realm, if they were not. */
  withheldReason(host: string): string | undefined {
    return this.withheld.get(host);
  }

  /** The Authorization header to send to `target` for `scope`, if one is known. */
  async header(target: AuthTarget, scope: string, signal?: AbortSignal): Promise<string | undefined> {
    const b = this.basic.get(target.host);
    if (b) return b;
    const key = `${target.host} ${scope}`;
    const t = this.tokens.get(key);
    if (t && t.expiresAt > Date.now()) return t.header;
    const ch = this.challenges.get(target.host);
    if (ch) return (await this.fetchTokenOnce(target, ch, scope, signal)).header;
    return undefined;
  }

  /**
   * Handle a 401 from `target`: remember what it asks for and obtain credentials for it. Returns
   * false when nothing new can be tried (the caller reports the 401).
   */
  async onUnauthorized(target: AuthTarget, wwwAuthenticate: string | undefined, scope: string, signal?: AbortSignal): Promise<boolean> {
    const { host, credHost } = target;
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const key = `${host} ${scope}`;
      const had = this.tokens.get(key);
      this.tokens.delete(key);
      this.challenges.set(host, bearer);
      // A token we just got being refused again: do not loop.
      if (had && had.expiresAt > Date.now() && bearer.params.error !== 'invalid_token') return false;
      await this.fetchTokenOnce(target, bearer, scope, signal);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (this.basic.has(host)) return false;
      const c = await this.creds.lookup(credHost);
      if (!c) return false;
      this.basic.set(host, `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`);
      return true;
    }
    return false;
  }

  private fetchTokenOnce(target: AuthTarget, ch: Challenge, scope: string, signal?: AbortSignal): Promise<CachedToken> {
    const key = `${target.host} ${scope}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(target, ch, scope, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p.then((t) => {
      this.tokens.set(key, t);
      return t;
    });
  }

  /** The credentials that may go to `realm`, or undefined (recording why) when none may. */
  private async credentialsFor(target: AuthTarget, realm: URL): Promise<Credentials | undefined> {
    const creds = await this.creds.lookup(target.credHost);
    if (!creds) return undefined;
    const verdict = credentialsAllowedAt(realm, {
      endpointHost: target.host,
      credHost: target.credHost,
      allowedRealmHosts: this.opts.allowedRealms(target.credHost),
    });
    if (verdict.credentials) {
      this.withheld.delete(target.host);
      return creds;
    }
    if (this.withheld.get(target.host) !== verdict.reason)
      this.opts.log?.warn(
        { registry: target.credHost, realm: realm.origin },
        `not sending the credentials for ${target.credHost}: ${verdict.reason}; asking for an anonymous token`,
      );
    this.withheld.set(target.host, verdict.reason);
    return undefined;
  }

  private async fetchToken(target: AuthTarget, ch: Challenge, scope: string, signal?: AbortSignal): Promise<CachedToken> {
    const { credHost } = target;
    if (!ch.params.realm) throw unavailable(`registry ${credHost}: Bearer challenge without a realm`);
    const realm = parseRealm(ch.params.realm, credHost);
    const service = ch.params.service;
    // berth only pulls: a challenge asking for more (push, another registry-wide scope) does not
    // make it request a token that could do more, which a hostile registry would then receive.
    const asked = (ch.params.scope ?? '').split(' ').filter((s) => PULL_SCOPE.test(s));
    const scopes = [...new Set([scope, ...asked])].filter(Boolean);
    const creds = await this.credentialsFor(target, realm);
    let res: Dispatcher.ResponseData | undefined;
    if (creds) {
      // OAuth2 password grant (what containerd tries first with credentials).
      const form = creds.identityToken
        ? new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'berth' })
        : new URLSearchParams({ grant_type: 'password', username: creds.username, password: creds.password, client_id: 'berth' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.send(target, realm, 'POST', { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), signal);
      // A refresh token has no GET fallback (it is not a password); other grants fall back to GET.
      if (!creds.identityToken && (res.statusCode === 404 || res.statusCode === 405 || res.statusCode === 401 || res.statusCode === 400)) {
        await res.body.dump();
        res = undefined;
      }
    }
    if (!res) res = await this.getToken(target, realm, service, scopes, creds, signal);
    if (res.statusCode !== 200) {
      await res.body.dump();
      const kind = res.statusCode === 401 || res.statusCode === 403 ? 'FailedPrecondition' : 'Unavailable';
      const redirect = res.statusCode >= 300 && res.statusCode < 400 ? ' (berth follows no redirects for token requests)' : '';
      const withheld = this.withheld.get(target.host);
      throw new BerthError(
        kind,
        `registry ${credHost}: token server ${realm.origin} refused ${creds ? 'the configured credentials' : 'anonymous access'} (HTTP ${res.statusCode})${redirect} for scope "${scopes.join(' ')}"${withheld ? `; ${withheld}` : ''}`,
      );
    }
    const text = await readBounded(res, MAX_TOKEN_BODY, () =>
      resourceExhausted(`registry ${credHost}: token server ${realm.origin} answered more than ${MAX_TOKEN_BODY} bytes`),
    );
    let body: any = {};
    try {
      body = JSON.parse(text.toString('utf8'));
    } catch {}
    const token = body?.token ?? body?.access_token;
    if (typeof token !== 'string' || token === '') throw unavailable(`registry ${credHost}: token server ${realm.origin} answered without a token`);
    // It goes into an Authorization header: RFC 6750's token characters only (JWTs fit).
    if (!BEARER_TOKEN.test(token))
      throw corrupt(`registry ${credHost}: token server ${realm.origin} answered a token with characters a Bearer token cannot hold`);
    const ttl = Number(body.expires_in) > 0 ? Number(body.expires_in) : 60;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + Math.max(ttl - 10, 5) * 1000 };
  }

  private getToken(target: AuthTarget, realm: URL, service: string | undefined, scopes: string[], creds: Credentials | undefined, signal?: AbortSignal) {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    return this.send(target, url, 'GET', headers, undefined, signal);
  }

  private async send(target: AuthTarget, url: URL, method: 'GET' | 'POST', headers: Record<string, string>, body: string | undefined, signal?: AbortSignal) {
    try {
      return await request(url, { method, headers: { 'user-agent': 'berth/0.1', ...headers }, body, signal, dispatcher: target.dispatcher });
    } catch (err: any) {
      if (signal?.aborted) throw err;
      throw unavailable(`token server ${url.origin}: ${err.code ?? ''} ${err.message}`.trim(), { cause: err });
    }
  }
}
