import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../src/remotes/auth.ts';
import { retryAfterMs, retryableStatus } from '../../src/remotes/retry.ts';

describe('WWW-Authenticate parsing', () => {
  it('reads Bearer parameters, quoted or not, with escapes and commas inside quotes', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
    expect(parseChallenges('Bearer realm="r",scope="repository:a:pull,push",error="invalid_token"')[0]!.params).toEqual({
      realm: 'r',
      scope: 'repository:a:pull,push',
      error: 'invalid_token',
    });
    expect(parseChallenges('Basic realm="x \\"y\\""')).toEqual([{ scheme: 'basic', params: { realm: 'x "y"' } }]);
    expect(parseChallenges('Basic realm=plain')).toEqual([{ scheme: 'basic', params: { realm: 'plain' } }]);
    expect(parseChallenges('')).toEqual([]);
  });
});

describe('retry policy', () => {
  it('retries 408, 429 and most 5xx, not 4xx or 501', () => {
    expect([408, 429, 500, 502, 503, 504].every(retryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 416, 501].some(retryableStatus)).toBe(false);
  });
  it('honours Retry-After in seconds or as a date, capped', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs('100000')).toBe(60_000);
    const at = new Date(Date.now() + 5000).toUTCString();
    expect(retryAfterMs(at)).toBeGreaterThan(3000);
    expect(retryAfterMs(at)).toBeLessThanOrEqual(5000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
