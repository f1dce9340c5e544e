/**
 * Registry authentication from `WWW-Authenticate` challenges, as containerd's docker authorizer
 * does: Bearer → a token from the realm (POST OAuth2 password grant with credentials, falling back
 * to GET with basic auth; refresh-token grant with an identity token; anonymous GET without), cached per host and scope until it expires;
 * Basic → the credentials on every request to that host. Tokens and passwords are never logged.
 */
import { request, type Dispatcher } from 'undici';
import { unavailable, BerthError } from '../errors.ts';
import type { CredentialStore, Credentials } from './credentials.ts';

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

interface CachedToken {
  header: string;
  expiresAt: number;
}

export class Authorizer {
  private readonly creds: CredentialStore;
  private readonly dispatcher?: Dispatcher;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly basic = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** The last challenge per host, so new scopes fetch tokens without a 401 round trip first. */
  private readonly challenges = new Map<string, Challenge>();

  constructor(creds: CredentialStore, dispatcher?: Dispatcher) {
    this.creds = creds;
    this.dispatcher = dispatcher;
  }

  /** The Authorization header to send to `host` for `scope`, if one is known. */
  async header(host: string, scope: string, credHost: string, signal?: AbortSignal): Promise<string | undefined> {
    const b = this.basic.get(host);
    if (b) return b;
    const key = `${host} ${scope}`;
    const t = this.tokens.get(key);
    if (t && t.expiresAt > Date.now()) return t.header;
    const ch = this.challenges.get(host);
    if (ch) return (await this.fetchTokenOnce(host, ch, scope, credHost, signal)).header;
    return undefined;
  }

  /**
   * Handle a 401 from `host`: remember what it asks for and obtain credentials for it. Returns
   * false when nothing new can be tried (the caller reports the 401).
   */
  async onUnauthorized(host: string, wwwAuthenticate: string | undefined, scope: string, credHost: string, signal?: AbortSignal): Promise<boolean> {
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const key = `${host} ${scope}`;
      const had = this.tokens.get(key);
      this.tokens.delete(key);
      this.challenges.set(host, bearer);
      // A token we just got being refused again: do not loop.
      if (had && had.expiresAt > Date.now() && bearer.params.error !== 'invalid_token') return false;
      await this.fetchTokenOnce(host, bearer, scope, credHost, signal);
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

  private fetchTokenOnce(host: string, ch: Challenge, scope: string, credHost: string, signal?: AbortSignal): Promise<CachedToken> {
    const key = `${host} ${scope}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(ch, scope, credHost, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p.then((t) => {
      this.tokens.set(key, t);
      return t;
    });
  }

  private async fetchToken(ch: Challenge, scope: string, credHost: string, signal?: AbortSignal): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (!realm) throw unavailable(`registry ${credHost}: Bearer challenge without a realm`);
    const service = ch.params.service;
    const scopes = [...new Set([scope, ...(ch.params.scope ? [ch.params.scope] : [])])].filter(Boolean);
    const creds = await this.creds.lookup(credHost);
    let res: Dispatcher.ResponseData | undefined;
    if (creds) {
      // OAuth2 password grant (what containerd tries first with credentials).
      const form = creds.identityToken
        ? new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'berth' })
        : new URLSearchParams({ grant_type: 'password', username: creds.username, password: creds.password, client_id: 'berth' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.send(realm, 'POST', { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), signal);
      // A refresh token has no GET fallback (it is not a password); other grants fall back to GET.
      if (!creds.identityToken && (res.statusCode === 404 || res.statusCode === 405 || res.statusCode === 401 || res.statusCode === 400)) {
        await res.body.dump();
        res = undefined;
      }
    }
    if (!res) res = await this.getToken(realm, service, scopes, creds, signal);
    if (res.statusCode !== 200) {
      await res.body.dump();
      const kind = res.statusCode === 401 || res.statusCode === 403 ? 'FailedPrecondition' : 'Unavailable';
      throw new BerthError(kind, `registry ${credHost}: token server ${new URL(realm).origin} refused ${creds ? 'the configured credentials' : 'anonymous access'} (HTTP ${res.statusCode}) for scope "${scopes.join(' ')}"`);
    }
    const body: any = await res.body.json().catch(() => ({}));
    const token = body.token ?? body.access_token;
    if (typeof token !== 'string' || token === '') throw unavailable(`registry ${credHost}: token server answered without a token`);
    const ttl = Number(body.expires_in) > 0 ? Number(body.expires_in) : 60;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + Math.max(ttl - 10, 5) * 1000 };
  }

  private getToken(realm: string, service: string | undefined, scopes: string[], creds: Credentials | undefined, signal?: AbortSignal) {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    return this.send(url.toString(), 'GET', headers, undefined, signal);
  }

  private async send(url: string, method: 'GET' | 'POST', headers: Record<string, string>, body: string | undefined, signal?: AbortSignal) {
    try {
      return await request(url, { method, headers, body, signal, dispatcher: this.dispatcher });
    } catch (err: any) {
      if (signal?.aborted) throw err;
      throw unavailable(`token server ${new URL(url).origin}: ${err.code ?? ''} ${err.message}`.trim(), { cause: err });
    }
  }
}
