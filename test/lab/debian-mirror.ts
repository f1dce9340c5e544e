/**
 * The Debian mirror apt already uses on this machine (so debootstrap reaches the same mirror,
 * proxy or snapshot that `apt-get install` does): the first non-security `URIs:` of
 * /etc/apt/sources.list.d/*.sources (deb822), else the first `deb` line of /etc/apt/sources.list,
 * else deb.debian.org.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const APT_DIR = '/etc/apt';
const FALLBACK = 'http://deb.debian.org/debian';

const isMain = (uri: string) => /^https?:\/\//.test(uri) && !/security/.test(uri);

export async function debianMirror(): Promise<string> {
  const partsDir = join(APT_DIR, 'sources.list.d');
  const parts = (await readdir(partsDir).catch(() => [] as string[])).filter((f) => f.endsWith('.sources')).sort();
  for (const f of parts) {
    const text = await readFile(join(partsDir, f), 'utf8');
    for (const m of text.matchAll(/^URIs:\s*(.+)$/gm)) {
      const uri = m[1]!.trim().split(/\s+/).find(isMain);
      if (uri) return uri;
    }
  }
  const list = await readFile(join(APT_DIR, 'sources.list'), 'utf8').catch(() => '');
  for (const line of list.split('\n')) {
    // deb [options] URI suite components…
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line.trim());
    if (m && isMain(m[1]!)) return m[1]!;
  }
  return FALLBACK;
}
