/**
 * Where a registry's credentials may go when its 401 names a token realm. The realm comes from a
 * `WWW-Authenticate` header, which anyone able to answer for a plain-HTTP registry can write, so
 * it is not trusted as it comes:
 *  - an HTTPS realm gets them (Docker Hub's auth.docker.io, every hosted registry);
 *  - a plain-HTTP realm gets them only on the registry's own host (same host and port);
 *  - any other realm only when the config allows its host (`registry.hosts."<host>".auth_realms`).
 * A realm that is refused still gets an anonymous token request (see auth.ts), as a registry
 * without credentials would.
 */
import { unavailable } from '../errors.ts';

export type RealmVerdict = { credentials: true } | { credentials: false; reason: string };

/** Parse a realm from a challenge: an absolute http(s) URL, else Unavailable naming the registry. */
export function parseRealm(realm: string, registry: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(realm);
  } catch {}
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw unavailable(`registry ${registry}: the token realm ${JSON.stringify(realm.slice(0, 200))} in its 401 challenge is not an http(s) URL`);
  }
  return url;
}

/** `host[:port]` as URL.host writes it (lower case, default port dropped). */
function normalHost(host: string, protocol: string): string {
  try {
    return new URL(`${protocol}//${host}`).host;
  } catch {
    return host.toLowerCase();
  }
}

/** Who is asking: the endpoint that sent the 401, and the host whose credentials and config apply. */
export interface RealmAsker {
  /** `host[:port]` of the endpoint that answered 401. */
  endpointHost: string;
  /** The host the credentials are configured for (the registry, or a mirror's own host). */
  credHost: string;
  /** The config's `registry.hosts."<credHost>".auth_realms`. */
  allowedRealmHosts: readonly string[];
}

/** May the credentials for `asker.credHost` go to `realm`? */
export function credentialsAllowedAt(realm: URL, asker: RealmAsker): RealmVerdict {
  if (realm.protocol === 'https:') return { credentials: true };
  if (realm.host === normalHost(asker.endpointHost, realm.protocol)) return { credentials: true };
  if (asker.allowedRealmHosts.some((h) => normalHost(h, realm.protocol) === realm.host)) return { credentials: true };
  return {
    credentials: false,
    reason: `the token realm ${realm.origin} is plain HTTP on another host than ${asker.endpointHost}; credentials go only to HTTPS realms, to the registry's own host, or to hosts listed in registry.hosts."${asker.credHost}".auth_realms`,
  };
}
