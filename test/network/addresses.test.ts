/**
 * The pure parts of networking (issue 12): subnets as address pools, route overlap, and reading
 * `ss` for the holder of a port.
 */
import { describe, expect, it } from 'vitest';
import { parseSs } from '../../src/network/port-holder.ts';
import { addressRange, freeAddress, parseSubnet, subnetsOverlap } from '../../src/network/subnet.ts';

describe('subnets', () => {
  it('give the gateway the first address and containers the next ones, lowest free first', () => {
    const s = parseSubnet('10.89.3.0/30');
    expect(s.gateway).toBe('10.89.3.1');
    expect(freeAddress(s, new Set(), 'n')).toBe('10.89.3.2');
    expect(() => freeAddress(s, new Set(['10.89.3.2']), 'n')).toThrow('network n: no free address left in 10.89.3.0/30');
    expect(freeAddress(parseSubnet('10.89.0.0/24'), new Set(['10.89.0.2', '10.89.0.4']), 'n')).toBe('10.89.0.3');
  });

  it('refuse what is not an IPv4 network address with a usable prefix', () => {
    for (const bad of ['10.89.0.0', '10.89.0.0/31', '10.89.0.0/7', 'fd00::/64', '10.89.0.0/24/1', '300.1.1.0/24'])
      expect(() => parseSubnet(bad), bad).toThrow();
  });

  it('overlap with each other and with host routes by address range', () => {
    expect(subnetsOverlap(parseSubnet('10.89.0.0/16'), parseSubnet('10.89.7.0/24'))).toBe(true);
    expect(subnetsOverlap(parseSubnet('10.89.0.0/24'), parseSubnet('10.89.1.0/24'))).toBe(false);
    expect(addressRange('10.0.0.0/8')).toEqual([167772160, 184549375]);
    expect(addressRange('10.1.2.3')).toEqual([167838211, 167838211]);
    expect(addressRange('default')).toBeUndefined();
  });
});

describe('ss output', () => {
  it('gives each socket its address, port and owner', () => {
    const text = [
      'LISTEN 0      4096   127.0.0.1:8080 0.0.0.0:* users:(("nginx",pid=412,fd=6),("nginx",pid=413,fd=6))',
      'LISTEN 0      128    [::]:22        [::]:*    users:(("sshd",pid=90,fd=4))',
      'UNCONN 0      0      127.0.0.53%lo:53 0.0.0.0:*',
      '',
    ].join('\n');
    expect(parseSs(text)).toEqual([
      { address: '127.0.0.1', port: 8080, command: 'nginx', pid: 412 },
      { address: '[::]', port: 22, command: 'sshd', pid: 90 },
      { address: '127.0.0.53', port: 53 },
    ]);
  });
});
