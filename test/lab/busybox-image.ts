/**
 * The lab's tiny image, `busybox:latest`: Debian's static busybox with a few applets and a page
 * for httpd, one gzip layer, for the host's platform. Built in memory in a moment, so never cached.
 */
import { readFile } from 'node:fs/promises';
import { formatPlatform, hostPlatform } from '../../src/oci/platform.ts';
import { buildImage, type BuiltImage, type FileContent } from '../helpers/images.ts';

/** From Debian's busybox-static (scripts/setup.sh installs it). */
const BUSYBOX_BINARY = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'ls', 'cat', 'sleep', 'httpd', 'wget', 'env', 'id', 'date'];

export async function busyboxImage(): Promise<BuiltImage> {
  const files: Record<string, FileContent> = {
    'bin/busybox': { content: await readFile(BUSYBOX_BINARY), mode: 0o755 },
    'www/index.html': '<h1>hello from the edge</h1>\n',
  };
  for (const a of APPLETS) files[`bin/${a}`] = { type: 'symlink', linkname: 'busybox' };
  return buildImage({
    platform: formatPlatform(hostPlatform()),
    layers: [{ files, compression: 'gzip' }],
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh', '-c', 'echo hello from busybox'] },
  });
}
