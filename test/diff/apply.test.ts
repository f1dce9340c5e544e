import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhiteoutMode } from '../../src/diff/apply.ts';
import { BerthError } from '../../src/errors.ts';
import { APPLY_PATHS } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar, type LayerCompression, type LayerEntry } from '../helpers/layers.ts';

let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/diff needs root (lchown, mknod, trusted.* xattrs)');
  tmp = mkdtempSync(`${tmpdir()}/berth-diff-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;

// One conformance suite for every apply path (src/diff/apply.ts, and the native helper).
describe.each(APPLY_PATHS)('%s apply path', (_path, applyLayer) => {
  function freshRoot(): string {
    const d = `${tmp}/r${n++}`;
    mkdirSync(d);
    return d;
  }

  async function apply(
    root: string,
    entries: LayerEntry[],
    opts: { compression?: LayerCompression; whiteouts?: WhiteoutMode; expectedDiffId?: string; mediaType?: string } = {},
  ) {
    const layer = compressLayer(await makeLayerTar(entries), opts.compression ?? 'gzip');
    const res = await applyLayer(Readable.from([layer.blob]), {
      root,
      mediaType: opts.mediaType ?? layer.mediaType,
      whiteouts: opts.whiteouts ?? 'overlay',
      expectedDiffId: opts.expectedDiffId ?? layer.diffId,
      layerDigest: layer.digest,
    });
    return { ...res, layer };
  }

  function xattrs(path: string): Record<string, string> {
    const out = execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path], { encoding: 'utf8' });
    const res: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
      if (m) res[m[1]!] = m[2]!;
    }
    return res;
  }

  const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // v2 capability: cap_net_raw, binary bytes

  describe('applyLayer: entry kinds', () => {
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      it(`applies every entry kind from a ${compression} layer with owners, modes, times and xattrs`, async () => {
        const root = freshRoot();
        const mtime = new Date('2023-05-06T07:08:09Z');
        const longDir = 'deep/' + 'd'.repeat(120);
        const longName = `${longDir}/${'f'.repeat(150)}`;
        const gnuName = `${longDir}/${'g'.repeat(140)}`;
        const res = await apply(
          root,
          [
            { type: 'dir', name: 'bin', mode: 0o755, mtime },
            { type: 'file', name: 'bin/su', content: 'setuid', mode: 0o4755, uid: 0, gid: 0 },
            { type: 'file', name: 'bin/sg', content: 'setgid', mode: 0o2750, uid: 1000, gid: 50 },
            { type: 'dir', name: 'tmp', mode: 0o1777, mtime },
            { type: 'file', name: 'bin/owned', content: 'x'.repeat(100_000), mode: 0o640, uid: 1234, gid: 5678, mtime },
            { type: 'symlink', name: 'bin/sh', target: '/bin/busybox', uid: 7, gid: 8 },
            { type: 'link', name: 'bin/su2', target: 'bin/su', mode: 0o4755 },
            { type: 'fifo', name: 'run.fifo', mode: 0o600, uid: 3, gid: 4 },
            { type: 'char', name: 'null', major: 1, minor: 3, mode: 0o666 },
            { type: 'block', name: 'loop9', major: 7, minor: 9, mode: 0o660, gid: 6 },
            { type: 'file', name: 'bin/ping', content: 'ping', mode: 0o755, xattrs: { 'security.capability': CAP, 'user.note': 'héllo=1' } },
            { type: 'dir', name: 'deep' },
            { type: 'dir', name: longDir },
            { type: 'file', name: longName, content: 'pax long name' },
            { type: 'file', name: gnuName, content: 'gnu long name', gnuLongName: true },
            { type: 'symlink', name: `${longDir}/link`, target: 'x'.repeat(200) },
          ],
          { compression },
        );
        expect(res.entries).toBeGreaterThanOrEqual(16);
        const st = (p: string) => lstatSync(`${root}/${p}`);
        expect(st('bin/su').mode & 0o7777).toBe(0o4755);
        expect(st('bin/sg').mode & 0o7777).toBe(0o2750);
        expect([st('bin/sg').uid, st('bin/sg').gid]).toEqual([1000, 50]);
        expect(st('tmp').mode & 0o7777).toBe(0o1777);
        expect(st('tmp').mtime.getTime()).toBe(mtime.getTime());
        expect(st('bin').mtime.getTime()).toBe(mtime.getTime()); // set after its children were created
        expect(st('bin/owned').size).toBe(100_000);
        expect([st('bin/owned').uid, st('bin/owned').gid, st('bin/owned').mode & 0o777]).toEqual([1234, 5678, 0o640]);
        expect(st('bin/owned').mtime.getTime()).toBe(mtime.getTime());
        expect(st('bin/sh').isSymbolicLink()).toBe(true);
        expect(readlinkSync(`${root}/bin/sh`)).toBe('/bin/busybox');
        expect([st('bin/sh').uid, st('bin/sh').gid]).toEqual([7, 8]);
        expect(st('bin/su2').ino).toBe(st('bin/su').ino);
        expect(st('run.fifo').isFIFO()).toBe(true);
        expect([st('run.fifo').uid, st('run.fifo').gid, st('run.fifo').mode & 0o777]).toEqual([3, 4, 0o600]);
        expect(st('null').isCharacterDevice()).toBe(true);
        expect(st('null').rdev).toBe((1 << 8) | 3);
        expect(st('loop9').isBlockDevice()).toBe(true);
        expect(st('loop9').gid).toBe(6);
        const xs = xattrs(`${root}/bin/ping`);
        expect(xs['security.capability']).toBe(CAP.toString('hex'));
        expect(Buffer.from(xs['user.note']!, 'hex').toString()).toBe('héllo=1');
        expect(readFileSync(`${root}/${longName}`, 'utf8')).toBe('pax long name');
        expect(readFileSync(`${root}/${gnuName}`, 'utf8')).toBe('gnu long name');
        expect(readlinkSync(`${root}/${longDir}/link`)).toBe('x'.repeat(200));
      });
    }

    it('keeps setuid, setgid and sticky bits on FIFOs and devices (found by the differential fuzz)', async () => {
      const root = freshRoot();
      await apply(root, [
        { type: 'fifo', name: 'p', mode: 0o4755, uid: 5 },
        { type: 'char', name: 'c', major: 1, minor: 3, mode: 0o2640 },
        { type: 'block', name: 'b', major: 7, minor: 1, mode: 0o1600 },
      ]);
      expect(lstatSync(`${root}/p`).mode & 0o7777).toBe(0o4755);
      expect(lstatSync(`${root}/p`).uid).toBe(5);
      expect(lstatSync(`${root}/c`).mode & 0o7777).toBe(0o2640);
      expect(lstatSync(`${root}/b`).mode & 0o7777).toBe(0o1600);
    });

    it('applies a regular file entry named with a trailing slash as a file, as containerd does', async () => {
      const root = freshRoot();
      await apply(root, [{ type: 'file', name: 'f/', content: '', mode: 0o640 }]);
      expect(lstatSync(`${root}/f`).isFile()).toBe(true);
      expect(lstatSync(`${root}/f`).mode & 0o7777).toBe(0o640);
    });

    it('skips an entry of an unknown type with a warning, and applies the next one', async () => {
      const root = freshRoot();
      const tar = await makeLayerTar([
        { type: 'file', name: 'odd', content: 'abc' },
        { type: 'file', name: 'next', content: 'n' },
      ]);
      // Type flag 'Z' on the first header (libarchive alone would make it a regular file).
      tar[156] = 'Z'.charCodeAt(0);
      tar.fill(0x20, 148, 156);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += tar[i]!;
      tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      const layer = compressLayer(tar, 'none');
      const warnings: string[] = [];
      await applyLayer(Readable.from([layer.blob]), { root, mediaType: layer.mediaType, whiteouts: 'overlay', warn: (m) => warnings.push(m) });
      expect(existsSync(`${root}/odd`)).toBe(false);
      expect(readFileSync(`${root}/next`, 'utf8')).toBe('n');
      expect(warnings.join('\n')).toMatch(/skipping odd: unsupported entry type/);
    });

    it('creates parent directories an entry implies, and reports them', async () => {
      const root = freshRoot();
      const res = await apply(root, [{ type: 'file', name: 'a/b/c', content: 'c' }]);
      expect(readFileSync(`${root}/a/b/c`, 'utf8')).toBe('c');
      expect(res.impliedDirs).toEqual(['a', 'a/b']);
      expect(lstatSync(`${root}/a`).mode & 0o7777).toBe(0o755);
    });

    it('replaces a file by a directory and a directory by a file', async () => {
      const root = freshRoot();
      mkdirSync(`${root}/was-dir/sub`, { recursive: true });
      writeFileSync(`${root}/was-dir/sub/x`, 'x');
      writeFileSync(`${root}/was-file`, 'f');
      await apply(
        root,
        [
          { type: 'file', name: 'was-dir', content: 'now a file' },
          { type: 'dir', name: 'was-file', mode: 0o700 },
          { type: 'file', name: 'was-file/inside', content: 'in' },
        ],
        { whiteouts: 'native' },
      );
      expect(readFileSync(`${root}/was-dir`, 'utf8')).toBe('now a file');
      expect(lstatSync(`${root}/was-file`).isDirectory()).toBe(true);
      expect(readFileSync(`${root}/was-file/inside`, 'utf8')).toBe('in');
    });

    it('merges a directory entry into an existing directory, keeping its contents', async () => {
      const root = freshRoot();
      mkdirSync(`${root}/etc`);
      writeFileSync(`${root}/etc/keep`, 'k');
      await apply(root, [{ type: 'dir', name: 'etc', mode: 0o750, uid: 9 }], { whiteouts: 'native' });
      expect(readFileSync(`${root}/etc/keep`, 'utf8')).toBe('k');
      expect(lstatSync(`${root}/etc`).mode & 0o7777).toBe(0o750);
      expect(lstatSync(`${root}/etc`).uid).toBe(9);
    });
  });

  describe('applyLayer: whiteouts', () => {
    it('overlay form: a 0:0 character device per whiteout and trusted.overlay.opaque on opaque dirs', async () => {
      const root = freshRoot();
      await apply(root, [
        { type: 'dir', name: 'etc' },
        { type: 'whiteout', name: 'etc/gone', uid: 0, gid: 0 },
        { type: 'dir', name: 'var' },
        { type: 'opaque', name: 'var' },
        { type: 'file', name: 'var/new', content: 'n' },
      ]);
      const wh = lstatSync(`${root}/etc/gone`);
      expect(wh.isCharacterDevice()).toBe(true);
      expect(wh.rdev).toBe(0);
      expect([wh.uid, wh.gid]).toEqual([0, 0]);
      expect(existsSync(`${root}/etc/.wh.gone`)).toBe(false);
      expect(xattrs(`${root}/var`)['trusted.overlay.opaque']).toBe('79'); // "y"
      expect(existsSync(`${root}/var/.wh..wh..opq`)).toBe(false);
      expect(readFileSync(`${root}/var/new`, 'utf8')).toBe('n');
    });

    it('native form: whiteouts delete, opaque dirs lose what the layer did not write', async () => {
      const root = freshRoot();
      mkdirSync(`${root}/etc/gone-dir/x`, { recursive: true });
      writeFileSync(`${root}/etc/gone`, 'g');
      writeFileSync(`${root}/etc/stays`, 's');
      mkdirSync(`${root}/var/old/deeper`, { recursive: true });
      writeFileSync(`${root}/var/old-file`, 'o');
      await apply(
        root,
        [
          { type: 'dir', name: 'etc' },
          { type: 'whiteout', name: 'etc/gone' },
          { type: 'whiteout', name: 'etc/gone-dir' },
          { type: 'dir', name: 'var' },
          { type: 'file', name: 'var/new', content: 'n' },
          { type: 'opaque', name: 'var' },
        ],
        { whiteouts: 'native' },
      );
      expect(existsSync(`${root}/etc/gone`)).toBe(false);
      expect(existsSync(`${root}/etc/gone-dir`)).toBe(false);
      expect(readFileSync(`${root}/etc/stays`, 'utf8')).toBe('s');
      expect(readdirSync(`${root}/var`)).toEqual(['new']);
      expect(readdirSync(`${root}/etc`).some((f) => f.startsWith('.wh.'))).toBe(false);
    });
  });

  describe('applyLayer: confinement (hostile layers)', () => {
    // Each test has a sentinel tree next to the root; after the hostile layer it must be unchanged.
    function sandbox() {
      const base = `${tmp}/h${n++}`;
      const root = `${base}/root`;
      const outside = `${base}/outside`;
      mkdirSync(root, { recursive: true });
      mkdirSync(outside);
      writeFileSync(`${outside}/secret`, 'secret');
      const snapshot = () =>
        readdirSync(outside)
          .sort()
          .map((f) => `${f}:${lstatSync(`${outside}/${f}`).size}:${lstatSync(`${outside}/${f}`).mode}:${lstatSync(`${outside}/${f}`).nlink}`)
          .join(',') + `|${readFileSync(`${outside}/secret`, 'utf8')}`;
      return { base, root, outside, before: snapshot(), snapshot };
    }

    it('confines ../ names and absolute names to the root', async () => {
      const s = sandbox();
      await apply(s.root, [
        { type: 'file', name: '../outside/secret', content: 'pwned' },
        { type: 'file', name: '../../../../outside-abs', content: 'pwned' },
        { type: 'file', name: `${s.outside}/secret`, content: 'pwned' },
        { type: 'dir', name: '/etc' },
        { type: 'file', name: '/etc/passwd', content: 'root-ish' },
      ]);
      expect(s.snapshot()).toBe(s.before);
      expect(existsSync(`${s.base}/outside-abs`)).toBe(false);
      expect(readFileSync(`${s.root}/outside/secret`, 'utf8')).toBe('pwned');
      expect(readFileSync(`${s.root}/outside-abs`, 'utf8')).toBe('pwned');
      expect(readFileSync(`${s.root}${s.outside}/secret`, 'utf8')).toBe('pwned');
      expect(readFileSync(`${s.root}/etc/passwd`, 'utf8')).toBe('root-ish');
    });

    it('follows symlinks only inside the root when writing through them', async () => {
      const s = sandbox();
      await apply(s.root, [
        { type: 'symlink', name: 'abs', target: s.outside },
        { type: 'file', name: 'abs/secret', content: 'pwned' },
        { type: 'symlink', name: 'rel', target: '../outside' },
        { type: 'file', name: 'rel/secret', content: 'pwned2' },
        { type: 'symlink', name: 'up', target: '../../../../../..' },
        { type: 'file', name: 'up/escaped', content: 'pwned3' },
        { type: 'dir', name: 'd' },
        { type: 'symlink', name: 'd/loop', target: '../d/loop2' },
        { type: 'symlink', name: 'd/loop2', target: 'loop' },
      ]);
      expect(s.snapshot()).toBe(s.before);
      expect(existsSync(`${s.base}/escaped`)).toBe(false);
      expect(existsSync('/escaped')).toBe(false);
      // The symlinks themselves are kept as written; writes through them landed inside the root.
      expect(readlinkSync(`${s.root}/abs`)).toBe(s.outside);
      expect(readFileSync(`${s.root}${s.outside}/secret`, 'utf8')).toBe('pwned');
      expect(readFileSync(`${s.root}/outside/secret`, 'utf8')).toBe('pwned2');
      expect(readFileSync(`${s.root}/escaped`, 'utf8')).toBe('pwned3');
    });

    it('replaces a symlink at the final path component instead of writing through it', async () => {
      const s = sandbox();
      symlinkSync(`${s.outside}/secret`, `${s.root}/victim`);
      await apply(s.root, [{ type: 'file', name: 'victim', content: 'pwned' }], { whiteouts: 'native' });
      expect(s.snapshot()).toBe(s.before);
      expect(lstatSync(`${s.root}/victim`).isFile()).toBe(true);
    });

    it('resolves hardlink targets inside the root and never links to a file outside', async () => {
      const s = sandbox();
      await expect(
        apply(s.root, [
          { type: 'symlink', name: 'out', target: s.outside },
          { type: 'link', name: 'stolen', target: 'out/secret' },
        ]),
      ).rejects.toThrow(/ENOENT|no such file/);
      expect(s.snapshot()).toBe(s.before);
      const s2 = sandbox();
      await expect(apply(s2.root, [{ type: 'link', name: 'stolen', target: '../outside/secret' }])).rejects.toThrow(/ENOENT|no such file/);
      expect(s2.snapshot()).toBe(s2.before);
      expect(lstatSync(`${s2.outside}/secret`).nlink).toBe(1);
    });

    it('fails a hardlink without a target (the root itself) with the failed call, as Node words it', async () => {
      const s = sandbox();
      const err = await apply(s.root, [{ type: 'link', name: 'h', target: '' }]).catch((e) => e);
      expect(err).toBeInstanceOf(BerthError);
      expect(err.kind).toBe('Internal');
      expect(err.message).toMatch(/: apply failed: EPERM: operation not permitted, link '.*\/root' -> '.*\/root\/h'$/);
      expect(s.snapshot()).toBe(s.before);
    });

    it('never sets a directory time through a parent that a later entry made a symlink (found by test/fuzz/layers)', async () => {
      for (const [whiteouts, target] of [
        ['native', '../outside'],
        ['overlay', undefined],
      ] as const) {
        const s = sandbox();
        mkdirSync(`${s.outside}/dir`);
        const mtime = lstatSync(`${s.outside}/dir`).mtimeMs;
        await apply(
          s.root,
          [
            { type: 'dir', name: 't/dir', mode: 0o700 },
            { type: 'symlink', name: 't', target: target ?? s.outside },
          ],
          { whiteouts },
        );
        expect(lstatSync(`${s.outside}/dir`).mtimeMs).toBe(mtime);
        expect(lstatSync(`${s.outside}/dir`).mode & 0o7777).toBe(0o755);
      }
    });

    it('keeps whiteouts inside the root (native deletions and overlay devices)', async () => {
      const s = sandbox();
      await apply(
        s.root,
        [
          { type: 'whiteout', name: '../outside/secret' },
          { type: 'symlink', name: 'o', target: s.outside },
          { type: 'whiteout', name: 'o/secret' },
          { type: 'opaque', name: 'o' },
        ],
        { whiteouts: 'native' },
      );
      expect(s.snapshot()).toBe(s.before);
      const s2 = sandbox();
      await apply(s2.root, [
        { type: 'symlink', name: 'o', target: s2.outside },
        { type: 'whiteout', name: 'o/secret' },
        { type: 'opaque', name: 'o' },
      ]);
      expect(s2.snapshot()).toBe(s2.before);
      expect(xattrs(s2.outside)['trusted.overlay.opaque']).toBeUndefined();
    });
  });

  describe('applyLayer: forged overlay attributes', () => {
    it('refuses trusted.* xattrs from a layer (a forged trusted.overlay.opaque would hide the layers below)', async () => {
      const root = freshRoot();
      const warnings: string[] = [];
      const layer = compressLayer(
        await makeLayerTar([
          { type: 'dir', name: 'etc', xattrs: { 'trusted.overlay.opaque': 'y', 'user.ok': '1' } },
          { type: 'file', name: 'etc/f', content: 'f', xattrs: { 'trusted.overlay.redirect': '/x' } },
        ]),
        'gzip',
      );
      await applyLayer(Readable.from([layer.blob]), { root, mediaType: layer.mediaType, whiteouts: 'overlay', warn: (m) => warnings.push(m) });
      expect(xattrs(`${root}/etc`)).toEqual({ 'user.ok': '31' });
      expect(xattrs(`${root}/etc/f`)).toEqual({});
      expect(warnings.join('\n')).toMatch(/ignored xattr trusted.overlay.opaque/);
    });
  });

  describe('applyLayer: verification and media types', () => {
    it('rejects a stream whose diff_id differs from the config, naming the layer', async () => {
      const root = freshRoot();
      const wrong = `sha256:${'0'.repeat(64)}`;
      const err = await apply(root, [{ type: 'file', name: 'f', content: 'x' }], { expectedDiffId: wrong }).catch((e) => e);
      expect(err).toBeInstanceOf(BerthError);
      expect(err.kind).toBe('Corrupt');
      expect(err.message).toMatch(/wrong diff id/);
      expect(err.message).toMatch(/layer sha256:[0-9a-f]{64}/);
      expect(err.message).toContain(wrong);
    });

    it('refuses unknown and non-distributable media types with Unimplemented', async () => {
      const root = freshRoot();
      const e1 = await apply(root, [], { mediaType: 'application/vnd.example.layer.v1.tar+lz4' }).catch((e) => e);
      expect(e1.kind).toBe('Unimplemented');
      expect(e1.message).toMatch(/unknown layer media type/);
      const e2 = await apply(root, [], { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip' }).catch((e) => e);
      expect(e2.kind).toBe('Unimplemented');
      expect(e2.message).toMatch(/non-distributable/);
      const e3 = await apply(root, [], { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' }).catch((e) => e);
      expect(e3.message).toMatch(/non-distributable/);
    });

    it('reports a corrupt compressed stream as Corrupt', async () => {
      const root = freshRoot();
      const layer = compressLayer(await makeLayerTar([{ type: 'file', name: 'f', content: 'x'.repeat(5000) }]), 'gzip');
      const bad = Buffer.from(layer.blob);
      bad.fill(0x55, 20, 60);
      const err = await applyLayer(Readable.from([bad]), { root, mediaType: layer.mediaType, whiteouts: 'overlay', layerDigest: layer.digest }).catch((e) => e);
      expect(err).toBeInstanceOf(BerthError);
      expect(['Corrupt', 'Internal']).toContain(err.kind);
    });

    it('applies a layer of no bytes at all, compressed or not, as one without entries', async () => {
      for (const compression of ['none', 'gzip', 'zstd'] as const) {
        const layer = compressLayer(Buffer.alloc(0), compression);
        const res = await applyLayer(Readable.from([layer.blob]), {
          root: freshRoot(),
          mediaType: layer.mediaType,
          whiteouts: 'overlay',
          expectedDiffId: layer.diffId,
        });
        expect(res).toMatchObject({ diffId: layer.diffId, size: 0, entries: 0, impliedDirs: [] });
      }
    });

    it('stops when its signal is aborted', async () => {
      const root = freshRoot();
      const layer = compressLayer(await makeLayerTar([{ type: 'file', name: 'f', content: 'x' }]), 'gzip');
      const ac = new AbortController();
      ac.abort();
      const err = await applyLayer(Readable.from([layer.blob]), { root, mediaType: layer.mediaType, whiteouts: 'overlay', signal: ac.signal }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(existsSync(`${root}/f`)).toBe(false);
    });
  });

  describe('applyLayer: whiteouts that name the parent itself', () => {
    for (const whiteouts of ['native', 'overlay'] as const) {
      for (const hidden of ['..', '.', '']) {
        it(`refuses .wh.${hidden} (${whiteouts}) and touches nothing beside the root`, async () => {
          const base = freshRoot();
          const root = `${base}/layer`;
          mkdirSync(`${root}/sub`, { recursive: true });
          mkdirSync(`${base}/sibling`);
          writeFileSync(`${base}/sibling/data`, 'keep');
          for (const name of [hidden, `sub/${hidden}`.replace(/\/$/, '/')]) {
            const err = await apply(root, [{ type: 'whiteout', name }], { whiteouts }).catch((e) => e);
            expect(err).toBeInstanceOf(BerthError);
            expect(err.kind).toBe('InvalidArgument');
            expect(err.message).toMatch(/invalid whiteout name/);
          }
          expect(readFileSync(`${base}/sibling/data`, 'utf8')).toBe('keep');
          expect(existsSync(`${root}/sub`)).toBe(true);
        });
      }
    }
  });
});
