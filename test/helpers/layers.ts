/**
 * Layer tars for tests, from entry lists: every entry kind a layer can hold, including the hostile
 * ones (names with `..`, absolute names, symlinks out of the root, hardlinks to outside), binary
 * xattrs in PAX records, and long names in both PAX and GNU form.
 *
 * @example
 *   const tar = await makeLayerTar([
 *     { type: 'dir', name: 'etc' },
 *     { type: 'file', name: 'etc/hello', content: 'hi\n', mode: 0o4755, xattrs: { 'user.k': 'v' } },
 *     { type: 'whiteout', name: 'etc/old' },
 *   ]);
 *   const { blob, diffId, mediaType } = compressLayer(tar, 'zstd');
 */
import { createHash } from 'node:crypto';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import tarStream from 'tar-stream';

interface Common {
  name: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** Extended attributes as `SCHILY.xattr.*` PAX records (values byte-exact). */
  xattrs?: Record<string, string | Buffer>;
  /** Write a long name as a GNU `././@LongLink` entry instead of PAX. */
  gnuLongName?: boolean;
}

export type LayerEntry =
  | (Common & { type: 'file'; content?: string | Buffer })
  | (Common & { type: 'dir' })
  | (Common & { type: 'symlink'; target: string })
  | (Common & { type: 'link'; target: string })
  | (Common & { type: 'fifo' })
  | (Common & { type: 'char' | 'block'; major: number; minor: number })
  /** `.wh.<basename>` next to `name`: deletes `name` from the layers below. */
  | (Common & { type: 'whiteout' })
  /** `<name>/.wh..wh..opq`: hides everything the layers below had in dir `name`. */
  | (Common & { type: 'opaque' });

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const TYPE = { file: 'file', dir: 'directory', symlink: 'symlink', link: 'link', fifo: 'fifo', char: 'character-device', block: 'block-device' } as const;

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** An uncompressed layer tar holding `entries` in order. */
export async function makeLayerTar(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const add = (header: Record<string, unknown>, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (header.type === 'file') pack.entry(header as any, body ?? Buffer.alloc(0), cb);
      else pack.entry(header as any, cb);
    });
  // tar-stream writes no body for PAX/GNU headers of our own, so they go out as files with a
  // marker name and get their type flag patched afterwards (see patchRawHeaders).
  const raw = (flag: 'x' | 'L', body: Buffer) => add({ name: `${RAW_MARK}${flag}`, type: 'file', mode: 0o644, mtime: new Date(0), size: body.length }, body);

  for (const e of entries) {
    let name = e.name;
    let type: string;
    if (e.type === 'whiteout') {
      const i = name.lastIndexOf('/');
      name = `${name.slice(0, i + 1)}.wh.${name.slice(i + 1)}`;
      type = 'file';
    } else if (e.type === 'opaque') {
      name = `${name.replace(/\/$/, '')}/.wh..wh..opq`;
      type = 'file';
    } else {
      type = TYPE[e.type];
    }
    const content = e.type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    const linkname = e.type === 'symlink' || e.type === 'link' ? e.target : undefined;
    const header: Record<string, unknown> = {
      name,
      type,
      mode: e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date('2024-01-02T03:04:05Z'),
      size: content.length,
      linkname,
      devmajor: e.type === 'char' || e.type === 'block' ? e.major : 0,
      devminor: e.type === 'char' || e.type === 'block' ? e.minor : 0,
    };
    const short = (s: string) => Buffer.from(s.slice(-90)).toString(); // overridden by the long form
    if (e.gnuLongName && Buffer.byteLength(name) > 99) {
      await raw('L', Buffer.from(name + '\0'));
      header.name = short(name);
    } else if (e.xattrs) {
      // A PAX header written by hand: tar-stream would encode binary values as UTF-8.
      const recs = [paxRecord('path', Buffer.from(name))];
      if (linkname) recs.push(paxRecord('linkpath', Buffer.from(linkname)));
      for (const [k, v] of Object.entries(e.xattrs)) recs.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
      const pax = Buffer.concat(recs);
      await raw('x', pax);
      header.name = short(name);
      if (linkname) header.linkname = short(linkname);
    }
    await add(header, content);
  }
  pack.finalize();
  await done;
  return patchRawHeaders(Buffer.concat(chunks));
}

const RAW_MARK = '@@berth-raw-';

function patchRawHeaders(tar: Buffer): Buffer {
  const mark = Buffer.from(RAW_MARK);
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    if (!tar.subarray(off, off + mark.length).equals(mark)) continue;
    const flag = String.fromCharCode(tar[off + mark.length]!);
    tar.fill(0, off, off + 100);
    tar.write(flag === 'x' ? 'PaxHeader' : '././@LongLink', off, 'latin1');
    tar[off + 156] = flag.charCodeAt(0);
    tar.fill(0x20, off + 148, off + 156);
    let sum = 0;
    for (let i = off; i < off + 512; i++) sum += tar[i]!;
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 'latin1');
  }
  return tar;
}

export type LayerCompression = 'none' | 'gzip' | 'zstd';

const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** Compress a layer tar; returns the blob, its digest, the diff_id and the OCI media type. */
export function compressLayer(tar: Buffer, compression: LayerCompression = 'gzip') {
  const blob = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompressSync(tar) : tar;
  const mediaType = compression === 'none' ? OCI_LAYER : `${OCI_LAYER}+${compression}`;
  return { blob, digest: sha256(blob), diffId: sha256(tar), mediaType, size: blob.length };
}
