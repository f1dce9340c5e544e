import { describe, expect, it } from 'vitest';
import { runtimeErrorKind } from '../../src/runtime/oci-runtime.ts';

describe('runtimeErrorKind: the one reading of runc and crun error text', () => {
  it.each([
    ['runc run: container with given ID already exists', 'AlreadyExists'],
    ['crun: container `web` already exists', 'AlreadyExists'],
    ['container does not exist', 'NotFound'],
    ['crun: error opening file `/run/berth/runc/web/status`: No such file or directory', 'NotFound'],
    ['container not running', 'NotFound'],
    ['crun: kill: process already finished', 'NotFound'],
    ['kill: no such process', 'NotFound'],
    ['exec: "nope": executable file not found in $PATH', 'NotFound'],
    ['cannot delete container web that is not stopped: container is running', 'FailedPrecondition'],
    ['timed out after 60s', 'FailedPrecondition'],
  ] as const)('%s → %s', (text, kind) => {
    expect(runtimeErrorKind(text)).toBe(kind);
  });
});
