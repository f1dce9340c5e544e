/**
 * The files berth writes for a container that sets `hostname`, `extraHosts` or `dns`, as Docker
 * does: /etc/hostname, /etc/hosts and /etc/resolv.conf, kept in the container's directory and
 * bind-mounted read-only. Pure: host files in, text out. A container that sets none of these gets
 * none (network: host then shares the host's files, as before).
 */
import type { ContainerSpec } from '../manifest/types.ts';

export interface EtcFiles {
  hostname?: string;
  hosts?: string;
  resolvConf?: string;
}

/** What the host's files say, as read when the container is created (undefined: the file is missing). */
export interface HostEtc {
  hosts?: string;
  resolvConf?: string;
}

const LOCALHOST = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';

export function etcFiles(spec: ContainerSpec, host: HostEtc): EtcFiles {
  const out: EtcFiles = {};
  if (spec.hostname) out.hostname = `${spec.hostname}\n`;
  if (spec.extraHosts?.length) {
    // network: host shares the host's names; a network of its own starts from localhost alone.
    const base = spec.network === 'host' ? (host.hosts ?? LOCALHOST) : LOCALHOST;
    const extra = spec.extraHosts.map((h) => {
      const i = h.indexOf(':');
      return `${h.slice(i + 1)}\t${h.slice(0, i)}\n`;
    });
    out.hosts = `${base}${base.endsWith('\n') || base === '' ? '' : '\n'}# extraHosts (berth)\n${extra.join('')}`;
  }
  if (spec.dns?.length) {
    // The host's search domains and options stay; its name servers are replaced, as `docker run --dns` does.
    const kept = (host.resolvConf ?? '').split('\n').filter((l) => l.trim() !== '' && !/^\s*nameserver\s/.test(l));
    out.resolvConf = [...kept, ...spec.dns.map((a) => `nameserver ${a}`)].join('\n') + '\n';
  }
  return out;
}
