/**
 * At most one download per blob per process: concurrent pulls of images that share layers wait on
 * the same fetch. Construct one per process (the daemon) or per pull (the CLI) and pass it in.
 * Across processes the content store's per-ref lock does the same job.
 */
export class BlobFetches<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Run `fetch` for `digest`, or join the run already in flight. */
  run(digest: string, fetch: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const existing = this.inflight.get(digest);
    if (existing) return { promise: existing, joined: true };
    const p = fetch().finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, p);
    return { promise: p, joined: false };
  }

  /** The fetch in flight for `digest`, if any. */
  get(digest: string): Promise<T> | undefined {
    return this.inflight.get(digest);
  }
}
