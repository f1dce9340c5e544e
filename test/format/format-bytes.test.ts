import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/format-bytes.ts';

describe('formatBytes', () => {
  it('prints IEC binary units, one decimal past bytes', () => {
    expect([0, 812, 1023, 1024, 1536, 1024 ** 2 * 12.34, 1024 ** 3, 1024 ** 4 * 2048].map(formatBytes)).toEqual([
      '0 B',
      '812 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '12.3 MiB',
      '1.0 GiB',
      '2048.0 TiB',
    ]);
  });

  it('keeps the sign and passes what is not a finite number through', () => {
    expect(formatBytes(-2048)).toBe('-2.0 KiB');
    expect(formatBytes(Number.NaN)).toBe('NaN');
  });
});
