import { describe, expect, it } from 'vitest';
import { isLoopbackHost, normalizeReference, parseReference } from '../../src/oci/reference.ts';
import { isKind } from '../../src/errors.ts';

const D = 'sha256:' + 'a'.repeat(64);

describe('image references normalise as Docker does', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['library/alpine', 'docker.io/library/alpine:latest'],
    ['user/app:1.0', 'docker.io/user/app:1.0'],
    ['index.docker.io/user/app', 'docker.io/user/app:latest'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['127.0.0.1:5000/busybox', '127.0.0.1:5000/busybox:latest'],
    ['localhost/busybox:x', 'localhost/busybox:x'],
    ['ghcr.io/a/b/c:v1', 'ghcr.io/a/b/c:v1'],
    [`alpine@${D}`, `docker.io/library/alpine@${D}`],
    [`alpine:3@${D}`, `docker.io/library/alpine:3@${D}`],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['a__b/c-d--e.f', 'docker.io/a__b/c-d--e.f:latest'],
  ])('%s → %s', (input, want) => {
    expect(normalizeReference(input)).toBe(want);
  });

  it.each([
    ['', 'empty'],
    ['Alpine', 'lowercase'],
    ['docker.io/Foo/bar', 'lowercase'],
    ['alpine:', 'tag'],
    ['alpine:bad tag', 'tag'],
    ['alpine@sha256:abc', 'digest'],
    [`alpine@sha512:${'a'.repeat(128)}`, 'only sha256'],
    ['a'.repeat(64), '64-byte'],
    ['foo//bar', 'component'],
    ['-foo', 'component'],
    [' alpine', 'whitespace'],
    ['host:port:x/y', ''],
  ])('rejects %j with a message showing it', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(isKind(err, 'InvalidArgument')).toBe(true);
    expect((err as Error).message).toContain(`"${input}"`);
    expect((err as Error).message).toContain(why);
  });

  it('knows loopback hosts', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['docker.io', '10.0.0.1:5000', 'localhost.example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });
});
