/**
 * tar-stream's extractor, with one fix: PAX records are decoded byte-exactly. tar-stream decodes
 * every PAX value as UTF-8, which mangles binary extended attributes (`SCHILY.xattr.security.capability`
 * is raw bytes). Here `SCHILY.xattr.*` values are kept as latin1 strings (one char per byte), so
 * `xattrsOf()` gets the exact bytes back; every other record is UTF-8 as the PAX standard says.
 *
 * And one bound: a PAX or GNU long-name header is held in memory whole before it is decoded
 * (tar-stream's own cap is 4 MiB), so its size is checked against the caller's limit first.
 */
import tar from 'tar-stream';
import { BerthError } from '../errors.ts';

export const XATTR_PREFIX = 'SCHILY.xattr.';

export function decodePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < buf.length) {
    let sp = off;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!len || off + len > buf.length) break;
    const rec = buf.subarray(sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) break;
    const key = rec.toString('utf8', 0, eq);
    out[key] = rec.toString(key.startsWith(XATTR_PREFIX) ? 'latin1' : 'utf8', eq + 1);
    off += len;
  }
  return out;
}

/**
 * A tar-stream extractor whose PAX headers keep binary xattr values. `checkLongHeader(size, type)`
 * may throw to refuse a long header before any of it is buffered; the extractor fails with that error.
 */
export function createExtract(checkLongHeader?: (size: number, type: string) => void): tar.Extract {
  const ex = tar.extract() as any;
  if (typeof ex._decodeLongHeader !== 'function' || typeof ex._consumeHeader !== 'function' || typeof ex._continueWrite !== 'function') {
    throw new BerthError('Internal', 'tar-stream changed: _decodeLongHeader, _consumeHeader or _continueWrite is missing (PAX decoding, header limits)');
  }
  if (checkLongHeader) {
    const consumeHeader = ex._consumeHeader;
    ex._consumeHeader = function (this: any) {
      const ok = consumeHeader.call(this);
      // A long header was just announced: its body (`_missing` bytes) is not buffered yet.
      if (ok !== false && this._longHeader === true) {
        try {
          checkLongHeader(this._missing, this._header?.type ?? 'long');
        } catch (err) {
          this._continueWrite(err);
          return false;
        }
      }
      return ok;
    };
  }
  const original = ex._decodeLongHeader;
  ex._decodeLongHeader = function (this: any, buf: Buffer) {
    const type = this._header?.type;
    if (type === 'pax-header') {
      const pax = decodePax(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
      this._pax = this._paxGlobal === null ? pax : Object.assign({}, this._paxGlobal, pax);
      return;
    }
    if (type === 'pax-global-header') {
      this._paxGlobal = decodePax(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
      return;
    }
    return original.call(this, buf);
  };
  return ex as tar.Extract;
}

/** The extended attributes an entry carries in `SCHILY.xattr.<name>` PAX records. */
export function xattrsOf(pax: Record<string, string> | null | undefined): Array<[string, Buffer]> {
  if (!pax) return [];
  const out: Array<[string, Buffer]> = [];
  for (const k in pax) {
    if (k.startsWith(XATTR_PREFIX)) out.push([k.slice(XATTR_PREFIX.length), Buffer.from(pax[k]!, 'latin1')]);
  }
  return out;
}
