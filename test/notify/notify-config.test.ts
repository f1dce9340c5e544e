/** `[notify]` in the config: defaults, and the mistakes refused with the key named. */
import { describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/config.ts';

const notify = (n: Record<string, unknown>) => configFromObject({ notify: n }).notify;

describe('[notify]', () => {
  it('is absent unless configured, and has defaults', () => {
    expect(configFromObject({}).notify).toBeUndefined();
    expect(notify({ url: 'https://hooks.example/berth' })).toEqual({
      url: 'https://hooks.example/berth',
      timeoutMs: 10_000,
      headers: {},
      tokenFile: undefined,
      ca: undefined,
      queueSize: 1000,
      retryBackoffMaxMs: 60_000,
    });
  });

  it('takes every option', () => {
    expect(
      notify({
        url: 'https://h.example/x',
        timeout: '3s',
        headers: { 'X-A': 'b' },
        token_file: '/etc/berth/t',
        ca: '/etc/berth/ca.pem',
        queue_size: 50,
        retry_backoff_max: '5m',
      }),
    ).toEqual({
      url: 'https://h.example/x',
      timeoutMs: 3000,
      headers: { 'X-A': 'b' },
      tokenFile: '/etc/berth/t',
      ca: '/etc/berth/ca.pem',
      queueSize: 50,
      retryBackoffMaxMs: 300_000,
    });
  });

  it.each([
    [{}, /notify.*url/],
    [{ url: 'not a url' }, /notify\.url.*not a URL/],
    [{ url: 'ftp://h.example/' }, /notify\.url.*http/],
    [{ url: 'http://hooks.example/', token_file: '/t' }, /notify\.token_file.*https/],
    [{ url: 'http://fleet:secret@hooks.example/' }, /notify\.url.*password.*https/],
    [{ url: 'https://h.example/', queue_size: 5000 }, /notify\.queue_size/],
    [{ url: 'https://h.example/', retries: 3 }, /unknown key "notify\.retries"/],
  ])('refuses %j', (n, message) => {
    expect(() => notify(n)).toThrow(message);
  });

  it('lets a token travel over plain http to loopback only', () => {
    expect(notify({ url: 'http://127.0.0.1:9000/hook', token_file: '/t' })?.tokenFile).toBe('/t');
    expect(notify({ url: 'http://localhost:9000/hook', token_file: '/t' })?.tokenFile).toBe('/t');
  });
});
