/**
 * Image references, parsed and normalised exactly as Docker does (distribution/reference):
 *   alpine                     → docker.io/library/alpine:latest
 *   user/app:1                 → docker.io/user/app:1
 *   index.docker.io/x/y        → docker.io/x/y:latest
 *   127.0.0.1:5000/busybox     → 127.0.0.1:5000/busybox:latest
 *   name@sha256:<hex>          → digest kept, no default tag
 * A bad reference is an InvalidArgument error whose message shows the reference.
 */
import { invalidArgument } from '../errors.ts';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HEX64_RE = /^[a-f0-9]{64}$/;

export interface ImageRef {
  /** Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** Repository path, e.g. `library/alpine`. */
  path: string;
  tag?: string;
  digest?: string;
}

function bad(ref: string, why: string): never {
  throw invalidArgument(`invalid image reference "${ref}": ${why}`);
}

/**
 * Parse and normalise `ref`. A reference without tag or digest gets `latest`, as Docker does.
 * Only sha256 digests are accepted.
 */
export function parseReference(ref: string): ImageRef {
  if (typeof ref !== 'string' || ref.length === 0) bad(String(ref), 'empty');
  if (ref !== ref.trim()) bad(ref, 'leading or trailing whitespace');
  if (HEX64_RE.test(ref)) bad(ref, 'cannot specify 64-byte hexadecimal strings');

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) bad(ref, `"${digest}" is not a valid digest`);
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) bad(ref, `unsupported digest "${digest}" (only sha256:<64 hex>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) bad(ref, `"${tag}" is not a valid tag`);
  }
  if (rest.length === 0) bad(ref, 'missing repository name');

  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;

  if (!DOMAIN_RE.test(domain)) bad(ref, `"${domain}" is not a valid registry host`);
  if (path.toLowerCase() !== path) bad(ref, 'repository name must be lowercase');
  for (const comp of path.split('/')) {
    if (!PATH_COMPONENT.test(comp)) bad(ref, `"${comp}" is not a valid repository path component`);
  }
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) bad(ref, `repository name longer than ${NAME_TOTAL_MAX} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { domain, path, tag, digest };
}

/** `domain/path` (no tag or digest). */
export function repositoryName(r: ImageRef): string {
  return `${r.domain}/${r.path}`;
}

/** The full normalised string: `domain/path[:tag][@digest]`. */
export function formatReference(r: ImageRef): string {
  return `${repositoryName(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** Parse and format in one go: `alpine` → `docker.io/library/alpine:latest`. */
export function normalizeReference(ref: string): string {
  return formatReference(parseReference(ref));
}

/** True if the registry host is loopback: localhost, 127.0.0.0/8 or ::1 (with or without a port). */
export function isLoopbackHost(domain: string): boolean {
  const host = domain.startsWith('[') ? domain.slice(1, domain.indexOf(']')) : domain.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
