/**
 * The registry client (OCI distribution API over undici): resolve a reference to a descriptor,
 * fetch manifests and configs into memory (verified), and stream blobs into the content store
 * with Range resume. Mirrors and per-host settings come from `hosts.ts`, auth from `auth.ts`.
 *
 * Failure handling: connection errors, 408, 429 (honouring Retry-After) and 5xx are retried with
 * capped exponential back-off until a blob (or manifest) has gone `pull.retry_budget` without a
 * byte of progress (and, if set, `pull.max_retries` failures in a row); bytes arriving give it a
 * fresh budget, so a flaky registry that still moves data never wins. A broken blob stream resumes at the
 * bytes already written (Range, accepted only as a 206 with the matching Content-Range, otherwise
 * the ingest starts over). A blob whose digest does not match is never committed; it is
 * downloaded afresh once, then reported with the ref, the expected and the found digest.
 *
 * Trust: a `Docker-Content-Digest` header is used only if it is a well-formed digest; headers
 * configured for a host go to that host only (not to mirrors, not across a redirect to another
 * origin, where undici also drops Authorization); token realms are judged by realm-policy.ts.
 */
import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { Agent, redirectInterceptor, request } from './http-client.ts';
import type { Config } from '../config/config.ts';
import type { ContentStore, Writer } from '../content/content.ts';
import { BerthError, corrupt, failedPrecondition, invalidArgument, notFound, resourceExhausted, unavailable, unimplemented, isKind } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isDigest, sha256Digest } from '../oci/digest.ts';
import { isSchema1Type, MANIFEST_ACCEPT, isIndexType, isManifestType } from '../oci/media-types.ts';
import { formatReference, parseReference, type ImageRef } from '../oci/reference.ts';
import type { Descriptor } from '../oci/types.ts';
import { Authorizer, type AuthTarget } from './auth.ts';
import { CredentialStore } from './credentials.ts';
import { GcPacer } from '../gc-pacer.ts';
import { endpointUrl, registryEndpoints, type Capability, type RegistryEndpoint } from './hosts.ts';
import type { BlobProgress, FetchResult, ImageRegistry, Resolved } from './image-registry.ts';
import { readBounded } from './read-bounded.ts';
import { RetryBudget, retryableError, retryableStatus, retryAfterMs, wait, type RetryPolicy } from './retry.ts';

/** Largest manifest/index/config berth reads into memory. */
const MAX_SMALL_BLOB = 8 << 20;

export type { BlobProgress, FetchResult, Resolved } from './image-registry.ts';

export interface RegistryClientOptions {
  config: Config;
  log: Logger;
  /** Bytes received between minor GCs that keep peak RSS flat (default 4 MiB; 0 disables). See gc-pacer.ts. */
  gcEveryBytes?: number;
}

import { ingestRef } from './ingest-ref.ts';

export { ingestRef };

type Response = Dispatcher.ResponseData;

export class RegistryClient implements ImageRegistry {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly creds: CredentialStore;
  private readonly dispatchers = new Map<string, Promise<EndpointDispatchers>>();
  private readonly auth: Authorizer;
  private readonly endpointsCache = new Map<string, Promise<RegistryEndpoint[]>>();
  private readonly pacer: GcPacer;
  private readonly retryPolicy: RetryPolicy;

  constructor(opts: RegistryClientOptions) {
    this.pacer = new GcPacer(opts.gcEveryBytes);
    this.config = opts.config;
    this.log = opts.log;
    this.creds = new CredentialStore(opts.config);
    this.auth = new Authorizer(this.creds, { allowedRealms: (host) => opts.config.registry.hosts[host]?.authRealms ?? [], log: opts.log });
    const p = opts.config.pull;
    this.retryPolicy = { budgetMs: p.retryBudgetMs, initialBackoffMs: p.retryBackoffMs, maxBackoffMs: p.retryBackoffMaxMs, maxRetries: p.maxRetries };
  }

  async close(): Promise<void> {
    for (const d of this.dispatchers.values()) await (await d).agent.close().catch(() => {});
    this.dispatchers.clear();
  }

  private endpoints(registry: string, cap: Capability): Promise<RegistryEndpoint[]> {
    let p = this.endpointsCache.get(registry);
    if (!p) {
      p = registryEndpoints(registry, this.config);
      this.endpointsCache.set(registry, p);
    }
    return p.then((eps) => eps.filter((e) => e.capabilities.has(cap)));
  }

  /** The endpoint's TLS settings as undici dispatchers, one per distinct set of settings. */
  private dispatcher(ep: RegistryEndpoint): Promise<EndpointDispatchers> {
    const key = JSON.stringify([ep.skipVerify, ep.ca, ep.client]);
    let d = this.dispatchers.get(key);
    if (!d) {
      d = (async () => {
        const read = (p: string) =>
          readFile(p, 'utf8').catch((err) => {
            throw invalidArgument(`registry ${ep.registry}: cannot read TLS file ${p}: ${err.code ?? err.message}`, { cause: err, place: { file: p } });
          });
        const ca = ep.ca.length ? await Promise.all(ep.ca.map(read)) : undefined;
        // undici takes one client certificate per connection: the first pair configured.
        const client = ep.client[0];
        const cert = client ? await read(client.cert) : undefined;
        const keyPem = client ? (client.key ? await read(client.key) : cert) : undefined;
        const agent = new Agent({
          connect: { rejectUnauthorized: !ep.skipVerify, ...(ca ? { ca } : {}), ...(cert ? { cert, key: keyPem } : {}), timeout: 30_000 },
          headersTimeout: 60_000,
          bodyTimeout: 60_000,
          keepAliveTimeout: 10_000,
        });
        return { agent, redirecting: agent.compose(redirectInterceptor({ maxRedirections: 5 })) };
      })();
      this.dispatchers.set(key, d);
    }
    return d;
  }

  /** One request to one endpoint, with auth (one retry after a 401 challenge). No other retries. */
  private async send(
    ep: RegistryEndpoint,
    repo: string,
    method: 'GET' | 'HEAD',
    rest: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Response> {
    const url = endpointUrl(ep, repo, rest);
    const scope = `repository:${repo}:pull`;
    const dispatchers = await this.dispatcher(ep);
    const target = this.authTarget(ep, dispatchers);
    // Headers configured for this endpoint stay with it: a redirect to another origin (blob
    // storage, a CDN) gets none of them.
    const strip = Object.keys(ep.headers);
    for (let round = 0; ; round++) {
      const h: Record<string, string> = { 'user-agent': 'berth/0.1', ...ep.headers, ...headers };
      const authz = await this.auth.header(target, scope, signal);
      if (authz) h.authorization = authz;
      this.log.debug({ method, url, range: h.range }, 'registry request');
      // The redirect interceptor reads stripHeadersOnCrossOriginRedirect per request (undici's request types omit it).
      const options = { method, headers: h, signal, dispatcher: dispatchers.redirecting, stripHeadersOnCrossOriginRedirect: strip };
      const res = await request(url, options);
      if (res.statusCode !== 401 || round > 0) return res;
      await res.body.dump();
      const retry = await this.auth.onUnauthorized(target, res.headers['www-authenticate'] as string | undefined, scope, signal);
      if (!retry) return { ...res, body: emptyBody() } as Response;
    }
  }

  private authTarget(ep: RegistryEndpoint, dispatchers: EndpointDispatchers): AuthTarget {
    const host = new URL(ep.origin).host;
    return { host, credHost: ep.mirror ? host : ep.registry, dispatcher: dispatchers.agent };
  }

  /**
   * `send` with retries on connection errors and retryable statuses, spending `budget`. Returns
   * any other response (the caller judges 2xx/404/…). `what` names the request in errors.
   */
  private async sendRetrying(
    ep: RegistryEndpoint,
    repo: string,
    method: 'GET' | 'HEAD',
    rest: string,
    headers: Record<string, string>,
    what: string,
    budget: RetryBudget,
    signal?: AbortSignal,
  ): Promise<Response> {
    // A failing mirror is given up quickly: the registry itself comes next (containerd retries
    // errors only on the last host, too).
    const b = ep.mirror ? new RetryBudget({ ...this.retryPolicy, maxRetries: Math.min(1, this.retryPolicy.maxRetries ?? 1) }) : budget;
    for (;;) {
      let res: Response;
      try {
        res = await this.send(ep, repo, method, rest, headers, signal);
      } catch (err: any) {
        if (signal?.aborted || err instanceof BerthError || !retryableError(err)) throw wrapNetworkError(err, what, ep, signal);
        const delay = b.nextDelay();
        if (delay === undefined) throw wrapNetworkError(err, what, ep, signal, b);
        this.log.warn(
          { what, endpoint: ep.origin, attempt: b.attempts, error: `${err.code ?? err.name}: ${err.message}`, delayMs: Math.round(delay) },
          'registry request failed; retrying',
        );
        await wait(delay, signal);
        continue;
      }
      if (!retryableStatus(res.statusCode)) return res;
      await res.body.dump().catch(() => {});
      const delay = b.nextDelay(retryAfterMs(res.headers['retry-after']));
      if (delay === undefined)
        throw unavailable(`${what}: ${ep.origin} answered HTTP ${res.statusCode} (${b.attempts} failed attempts); giving up after ${b.spent()}`);
      this.log.warn(
        { what, endpoint: ep.origin, attempt: b.attempts, status: res.statusCode, delayMs: Math.round(delay) },
        'registry busy or failing; retrying',
      );
      await wait(delay, signal);
    }
  }

  /** A 401 or 403 as an error that says which credentials to check, and why they were not sent if they were not. */
  private checkAccess(status: number, name: string, ep: RegistryEndpoint, res?: Response): void {
    if (status === 401 || status === 403) {
      res?.body.dump().catch(() => {});
      const host = new URL(ep.origin).host;
      const withheld = this.auth.withheldReason(host);
      throw failedPrecondition(
        `${name}: access denied by ${ep.origin} (HTTP ${status}); check the credentials for ${ep.mirror ? host : ep.registry}${withheld ? ` (they were not sent: ${withheld})` : ''}`,
      );
    }
  }

  /** Try each endpoint in order; the last error wins. */
  private async overEndpoints<T>(registry: string, cap: Capability, fn: (ep: RegistryEndpoint) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const eps = await this.endpoints(registry, cap);
    if (eps.length === 0) throw failedPrecondition(`registry ${registry}: no host is configured with the "${cap}" capability`);
    let last: unknown;
    for (const [i, ep] of eps.entries()) {
      try {
        return await fn(ep);
      } catch (err) {
        if (signal?.aborted) throw err;
        // Refusals that no other host can fix.
        if (isKind(err, 'Unimplemented') || isKind(err, 'Corrupt') || isKind(err, 'InvalidArgument')) throw err;
        last = err;
        if (i < eps.length - 1) this.log.warn({ endpoint: ep.origin, err }, 'endpoint failed; trying the next one');
      }
    }
    throw last;
  }

  /** Resolve a reference (string or parsed) to the descriptor it names. */
  async resolve(reference: string | ImageRef, signal?: AbortSignal): Promise<Resolved> {
    const ref = typeof reference === 'string' ? parseReference(reference) : reference;
    const name = formatReference(ref);
    const tagOrDigest = ref.digest ?? ref.tag!;
    return this.overEndpoints(
      ref.domain,
      'resolve',
      async (ep) => {
        const accept = { accept: MANIFEST_ACCEPT.join(', ') };
        const budget = new RetryBudget(this.retryPolicy);
        const head = await this.sendRetrying(ep, ref.path, 'HEAD', `manifests/${tagOrDigest}`, accept, `resolve ${name}`, budget, signal);
        await head.body.dump().catch(() => {});
        if (head.statusCode === 404) throw notFound(`${name}: not found in the registry (${ep.origin})`);
        this.checkAccess(head.statusCode, name, ep);
        const headType = headerValue(head.headers['content-type']);
        if (isSchema1Type(headType)) throw schema1(name);
        const headDigest = headerValue(head.headers['docker-content-digest']);
        // It goes into URLs (manifests/<digest>) and records: only a well-formed digest is used.
        if (headDigest !== undefined && !isDigest(headDigest)) {
          throw corrupt(
            `${name}: ${ep.origin} answered Docker-Content-Digest ${JSON.stringify(headDigest.slice(0, 100))}, which is not a sha256 digest (sha256:<64 hex>)`,
          );
        }
        const headLen = Number(headerValue(head.headers['content-length']));
        if (head.statusCode === 200 && headDigest && headType && isKnownRootType(headType) && Number.isSafeInteger(headLen) && headLen > 0) {
          if (ref.digest && headDigest !== ref.digest) throw corrupt(`${name}: registry says the manifest digest is ${headDigest}, expected ${ref.digest}`);
          return { name, ref, desc: { mediaType: headType, digest: headDigest, size: headLen } };
        }
        // HEAD not allowed or incomplete: GET the manifest (containerd's fallback) and hash it.
        const get = await this.sendRetrying(ep, ref.path, 'GET', `manifests/${tagOrDigest}`, accept, `resolve ${name}`, budget, signal);
        if (get.statusCode === 404) {
          await get.body.dump();
          throw notFound(`${name}: not found in the registry (${ep.origin})`);
        }
        this.checkAccess(get.statusCode, name, ep, get);
        if (get.statusCode !== 200) {
          await get.body.dump();
          throw unavailable(`resolve ${name}: ${ep.origin} answered HTTP ${get.statusCode}`);
        }
        const bytes = await readLimited(get, MAX_SMALL_BLOB, name);
        let mediaType = headerValue(get.headers['content-type']);
        if (isSchema1Type(mediaType)) throw schema1(name);
        if (!isKnownRootType(mediaType)) {
          try {
            const body = JSON.parse(bytes.toString('utf8'));
            if (body.schemaVersion === 1) throw schema1(name);
            mediaType =
              body.mediaType ?? (Array.isArray(body.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
          } catch (err) {
            if (err instanceof BerthError) throw err;
            throw invalidArgument(`${name}: the registry's manifest is not JSON`);
          }
        }
        const digest = sha256Digest(bytes);
        if (ref.digest && digest !== ref.digest) throw corrupt(`${name}: manifest digest mismatch: expected ${ref.digest}, found ${digest}`);
        return { name, ref, desc: { mediaType: mediaType!, digest, size: bytes.length }, bytes };
      },
      signal,
    );
  }

  /** Fetch a manifest, index or config into memory, verified against `desc`. */
  async fetchSmall(ref: ImageRef, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    if (desc.size > MAX_SMALL_BLOB) throw invalidArgument(`${formatReference(ref)}: ${desc.digest} is ${desc.size} bytes, too large for a manifest or config`);
    const manifest = isIndexType(desc.mediaType) || isManifestType(desc.mediaType);
    const rest = `${manifest ? 'manifests' : 'blobs'}/${desc.digest}`;
    const what = `fetch ${formatReference(ref)} ${desc.digest}`;
    return this.overEndpoints(
      ref.domain,
      'pull',
      async (ep) => {
        const budget = new RetryBudget(this.retryPolicy);
        for (let attempt = 0; ; attempt++) {
          const res = await this.sendRetrying(ep, ref.path, 'GET', rest, manifest ? { accept: MANIFEST_ACCEPT.join(', ') } : {}, what, budget, signal);
          if (res.statusCode === 404) {
            await res.body.dump();
            throw notFound(`${what}: not found (${ep.origin})`);
          }
          this.checkAccess(res.statusCode, formatReference(ref), ep, res);
          if (res.statusCode !== 200) {
            await res.body.dump();
            throw unavailable(`${what}: ${ep.origin} answered HTTP ${res.statusCode}`);
          }
          let bytes: Buffer;
          try {
            bytes = await readLimited(res, MAX_SMALL_BLOB, what);
          } catch (err) {
            const delay = retryableError(err) && !signal?.aborted ? budget.nextDelay() : undefined;
            if (delay === undefined) throw wrapNetworkError(err, what, ep, signal, budget.attempts > 0 ? budget : undefined);
            await wait(delay, signal);
            continue;
          }
          const found = sha256Digest(bytes);
          if (found !== desc.digest || bytes.length !== desc.size) {
            if (attempt < 1) continue;
            throw corrupt(`${what}: digest mismatch: expected ${desc.digest} (${desc.size} bytes), found ${found} (${bytes.length} bytes); nothing committed`);
          }
          return bytes;
        }
      },
      signal,
    );
  }

  /**
   * Stream a blob into `store` (resuming a previous ingest of the same blob), verify and commit
   * it. A blob already committed is skipped.
   */
  async fetchBlob(
    ref: ImageRef,
    desc: Descriptor,
    store: ContentStore,
    opts: { signal?: AbortSignal; onProgress?: (p: BlobProgress) => void } = {},
  ): Promise<FetchResult> {
    const { signal } = opts;
    const what = `fetch ${formatReference(ref)} ${desc.digest}`;
    const hasBlob = async () =>
      store.info(desc.digest).then(
        () => true,
        (e) => (isKind(e, 'NotFound') ? false : Promise.reject(e)),
      );
    if (await hasBlob()) return { skipped: true, resumedFrom: 0, transferred: 0 };
    const key = ingestRef(desc);
    let freshStarts = 0;
    // One budget for the blob, across resumes and endpoints; bytes arriving renew it.
    const budget = new RetryBudget(this.retryPolicy);
    for (;;) {
      const writer = await store.writer({ ref: key, expected: desc.digest, total: desc.size, signal });
      // Another process may have committed it while we waited for the lock.
      if (await hasBlob()) {
        await writer.close();
        return { skipped: true, resumedFrom: 0, transferred: 0 };
      }
      const resumedFrom = writer.offset;
      let transferred = 0;
      try {
        transferred = await this.overEndpoints(ref.domain, 'pull', (ep) => this.streamInto(ep, ref, desc, writer, what, budget, opts), signal);
        await writer.commit(desc.size, desc.digest);
        return { skipped: false, resumedFrom, transferred };
      } catch (err) {
        await writer.close().catch(() => {});
        // A corrupt blob (or corrupt bytes left in the ingest by a crash): one fresh download.
        if (isKind(err, 'Corrupt') && freshStarts++ < 1 && !signal?.aborted) {
          this.log.warn({ digest: desc.digest, err }, 'blob failed verification; downloading it again from the start');
          await (store as Partial<{ abortIngest(r: string): Promise<void> }>).abortIngest?.(key).catch(() => {});
          continue;
        }
        throw err;
      }
    }
  }

  /** Stream from one endpoint into `writer`, resuming on broken streams. Returns bytes transferred. */
  private async streamInto(
    ep: RegistryEndpoint,
    ref: ImageRef,
    desc: Descriptor,
    writer: Writer,
    what: string,
    budget: RetryBudget,
    opts: { signal?: AbortSignal; onProgress?: (p: BlobProgress) => void },
  ): Promise<number> {
    const { signal } = opts;
    let transferred = 0;
    for (;;) {
      if (writer.offset > desc.size) await writer.truncate();
      if (writer.offset === desc.size) return transferred;
      const offset = writer.offset;
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const res = await this.sendRetrying(ep, ref.path, 'GET', `blobs/${desc.digest}`, headers, what, budget, signal);
      if (res.statusCode === 404) {
        await res.body.dump();
        throw notFound(`${what}: blob not found (${ep.origin})`);
      }
      this.checkAccess(res.statusCode, formatReference(ref), ep, res);
      if (res.statusCode === 416 && offset > 0) {
        await res.body.dump();
        await writer.truncate();
        continue;
      }
      if (offset > 0 && res.statusCode === 206) {
        const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(res.headers['content-range']) ?? '');
        if (!cr || Number(cr[1]) !== offset) {
          // A partial answer for some other range: useless; start over without Range.
          this.log.warn({ digest: desc.digest, contentRange: res.headers['content-range'], offset }, 'registry answered a different range; starting over');
          await res.body.dump();
          await writer.truncate();
          continue;
        }
      } else if (res.statusCode === 200) {
        if (offset > 0) {
          this.log.info({ digest: desc.digest, offset }, 'registry ignored the Range request; starting the blob over');
          await writer.truncate();
        }
      } else {
        await res.body.dump();
        throw unavailable(`${what}: ${ep.origin} answered HTTP ${res.statusCode}`);
      }
      try {
        for await (const chunk of res.body) {
          await writer.write(chunk as Buffer);
          transferred += (chunk as Buffer).length;
          budget.progress();
          this.pacer.account((chunk as Buffer).length);
          if (writer.offset > desc.size) throw corrupt(`${what}: the registry sent more than the ${desc.size} bytes the descriptor says`);
          opts.onProgress?.({ digest: desc.digest, offset: writer.offset, total: desc.size });
        }
      } catch (err: any) {
        res.body.destroy();
        if (err instanceof BerthError) throw err;
        if (signal?.aborted) throw wrapNetworkError(err, what, ep, signal);
        if (!retryableError(err)) throw localError(err, what);
        const delay = budget.nextDelay();
        if (delay === undefined) throw wrapNetworkError(err, what, ep, signal, budget);
        this.log.warn(
          { digest: desc.digest, offset: writer.offset, error: err.code ?? err.message, delayMs: Math.round(delay) },
          'blob stream broke; resuming',
        );
        await wait(delay, signal);
        continue;
      }
      if (writer.offset !== desc.size) {
        // Ended early without an error: treat as a cut stream and resume.
        const delay = budget.nextDelay();
        if (delay === undefined)
          throw unavailable(
            `${what}: the stream keeps ending at ${writer.offset} of ${desc.size} bytes (${budget.attempts} failed attempts); giving up after ${budget.spent()}`,
          );
        await wait(delay, signal);
        continue;
      }
      return transferred;
    }
  }
}

/** An endpoint's TLS settings: `agent` follows no redirects (token requests), `redirecting` does (registry requests). */
interface EndpointDispatchers {
  agent: InstanceType<typeof Agent>;
  redirecting: Dispatcher;
}

function emptyBody() {
  return { dump: async () => {}, text: async () => '', json: async () => ({}), destroy: () => {} };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function isKnownRootType(mt: string | undefined): boolean {
  return isIndexType(mt) || isManifestType(mt);
}

function schema1(name: string): BerthError {
  return unimplemented(`${name}: Docker image manifest schema 1 is not supported (deprecated since 2017); push the image again with a current client`);
}

function readLimited(res: Response, limit: number, what: string): Promise<Buffer> {
  return readBounded(res, limit, () => invalidArgument(`${what}: larger than ${limit} bytes`));
}

/** An error that is not the network's (the disk, a bug): say so, with the path for disk errors. */
function localError(err: any, what: string): Error {
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT')
    return resourceExhausted(`${what}: disk full writing to the content store${err.path ? ` (${err.path})` : ''}`, { cause: err });
  if (typeof err?.code === 'string' && err.syscall)
    return new BerthError('Internal', `${what}: ${err.code} ${err.syscall}${err.path ? ` ${err.path}` : ''}`, { cause: err });
  return err;
}

function wrapNetworkError(err: any, what: string, ep: RegistryEndpoint, signal?: AbortSignal, spent?: RetryBudget): Error {
  if (err instanceof BerthError) return err;
  if (signal?.aborted) return new BerthError('Aborted', `${what}: interrupted`, { cause: err });
  let code = err?.code;
  for (let e = err?.cause; !code && e; e = e.cause) code = e.code;
  const hint = code === 'ECONNREFUSED' ? ' (is the registry running?)' : '';
  const tries = spent ? ` after ${spent.attempts} attempts` : '';
  const gaveUp = spent ? `; giving up after ${spent.spent()}` : '';
  return unavailable(`${what}: cannot reach ${ep.origin}${tries}: ${code ?? err?.message ?? String(err)}${hint}${gaveUp}`, { cause: err });
}
