/**
 * A lease for work in progress (a pull, an import) that expires on its own if the process dies —
 * so a pull killed with -9 does not pin its blobs for a day (containerd #6294) — yet never expires
 * under a pull that is still running on a slow link: every `renewEveryMs` the lease is replaced by
 * a fresh one holding the same resources (the new one is complete before the old one goes).
 */
import { randomUUID } from 'node:crypto';
import type { LeaseResource, Metadata } from '../metadata/metadata.ts';

export interface WorkLeaseOptions {
  /** Prefix of the lease id, e.g. `pull`. */
  kind: string;
  labels?: Record<string, string>;
  /** How long the lease outlives its process (default 1 h). */
  ttlMs?: number;
  /** How often it is renewed while the work runs (default ttl / 3). */
  renewEveryMs?: number;
}

export class WorkLease {
  private readonly metadata: Metadata;
  private readonly opts: Required<Omit<WorkLeaseOptions, 'labels'>> & { labels: Record<string, string> };
  private readonly resources: LeaseResource[] = [];
  private readonly seen = new Set<string>();
  private timer?: NodeJS.Timeout;
  #id: string;

  constructor(metadata: Metadata, opts: WorkLeaseOptions) {
    this.metadata = metadata;
    const ttlMs = opts.ttlMs ?? 3_600_000;
    this.opts = {
      kind: opts.kind,
      ttlMs,
      renewEveryMs: opts.renewEveryMs ?? Math.floor(ttlMs / 3),
      labels: { ...(opts.labels ?? {}), 'berth/pid': String(process.pid) },
    };
    this.#id = this.create();
    this.timer = setInterval(() => this.renew(), this.opts.renewEveryMs);
    this.timer.unref();
  }

  get id(): string {
    return this.#id;
  }

  private create(): string {
    const id = `${this.opts.kind}-${randomUUID()}`;
    this.metadata.transaction(() => {
      this.metadata.createLease(id, { expiresAt: new Date(Date.now() + this.opts.ttlMs), labels: this.opts.labels });
      for (const r of this.resources) this.metadata.addLeaseResource(id, r);
    });
    return id;
  }

  /** Replace the lease by a fresh one with the same resources. */
  renew(): void {
    const old = this.#id;
    this.#id = this.create();
    this.metadata.deleteLease(old);
  }

  /** Protect resources (idempotent). */
  add(...resources: LeaseResource[]): void {
    const fresh = resources.filter((r) => !this.seen.has(`${r.type} ${r.key}`));
    if (fresh.length === 0) return;
    this.metadata.transaction(() => {
      for (const r of fresh) this.metadata.addLeaseResource(this.#id, r);
    });
    for (const r of fresh) {
      this.seen.add(`${r.type} ${r.key}`);
      this.resources.push(r);
    }
  }

  /** Drop the lease: the work is recorded (or abandoned). */
  release(): void {
    clearInterval(this.timer);
    this.metadata.deleteLease(this.#id);
  }
}
