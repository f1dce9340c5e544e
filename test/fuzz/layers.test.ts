/**
 * Fuzzing layer application (issue 8), through the real `applyLayer` as root:
 * - hostile stacks (names with `..` and absolute paths, symlinks and hardlinks aimed out of the
 *   root, whiteouts of every odd name, device nodes, long and oversized headers, in both whiteout
 *   forms) never create, change or remove anything outside the snapshot being built: a sandbox of
 *   siblings (files, a symlink, the overlay parent layer) is compared before and after, inode and
 *   ctime included, so a chmod or a hardlink through an escape shows;
 * - benign stacks unpack to exactly the tree a small in-memory model of containerd's rules gives.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhiteoutMode } from '../../src/diff/apply.ts';
import { BerthError } from '../../src/errors.ts';
import { APPLY_PATHS, type ApplyFn } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar, type LayerEntry } from '../helpers/layers.ts';
import { FUZZ_TIMEOUT, fuzzParams } from './fuzz-params.ts';

/** Counterexamples found by `npm run fuzz`, kept so they run first on every `npm test`. */
const HOSTILE_REGRESSIONS: [Stack][] = [
  // A directory's time was set at the end of the layer through a parent that had become a symlink.
  [
    {
      whiteouts: 'native',
      compression: 'none',
      layers: [
        [
          { type: 'dir', name: 't/dir', mode: 0o700 },
          { type: 'symlink', name: 't', target: '../outside' },
        ],
      ],
    },
  ],
];
const BENIGN_REGRESSIONS: [LayerEntry[][]][] = [];

interface Stack {
  whiteouts: WhiteoutMode;
  compression: 'none' | 'gzip';
  layers: LayerEntry[][];
}

/** `<base>/up/sb/snap`: the two levels above the sandbox must stay as they are too. */
let base: string;
let sandbox: string;
let snap: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/fuzz/layers needs root (lchown, mknod, trusted.* xattrs)');
  base = mkdtempSync(`${tmpdir()}/berth-fuzz-layers-`);
  sandbox = `${base}/up/sb`;
  mkdirSync(sandbox, { recursive: true });
  snap = `${sandbox}/snap`;
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/**
 * The snapshot's siblings, made anew for each case (a case that changed them must not make the
 * next ones fail, or shrinking would report a case that is innocent), and an empty snapshot.
 */
function freshSandbox(): void {
  for (const name of readdirSync(sandbox)) rmSync(`${sandbox}/${name}`, { recursive: true, force: true });
  mkdirSync(`${sandbox}/outside/dir`, { recursive: true });
  writeFileSync(`${sandbox}/outside/secret`, 'secret');
  writeFileSync(`${sandbox}/outside/dir/x`, 'x');
  symlinkSync('/etc', `${sandbox}/outside/etc-link`);
  mkdirSync(`${sandbox}/lower/a/b`, { recursive: true });
  writeFileSync(`${sandbox}/lower/a/f`, 'lower');
  mkdirSync(snap);
}

/** Everything under `dir` but `skip`: type, owner, mode, size, inode, link count, times, content. */
function tree(dir: string, skip?: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    for (const name of readdirSync(p).sort()) {
      const path = `${p}/${name}`;
      if (path === skip) continue;
      const st = lstatSync(path);
      let body = '';
      if (st.isSymbolicLink()) body = `-> ${readlinkSync(path)}`;
      else if (st.isFile()) body = createHash('sha256').update(readFileSync(path)).digest('hex');
      out[path.slice(dir.length)] = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ino=${st.ino} n=${st.nlink} m=${st.mtimeMs} c=${st.ctimeMs} ${body}`;
      if (st.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out;
}

async function applyStack(
  applyLayer: ApplyFn,
  layers: LayerEntry[][],
  opts: { whiteouts: WhiteoutMode; compression?: 'none' | 'gzip'; parents?: string[] },
): Promise<void> {
  for (const entries of layers) {
    const layer = compressLayer(await makeLayerTar(entries), opts.compression ?? 'none');
    await applyLayer(Readable.from([layer.blob]), {
      root: snap,
      mediaType: layer.mediaType,
      whiteouts: opts.whiteouts,
      parents: opts.parents,
      expectedDiffId: layer.diffId,
      layerDigest: layer.digest,
      gcEveryBytes: 0,
    });
  }
}

// ------------------------------------------------------------------------------------------ hostile

function hostileStack(): fc.Arbitrary<Stack> {
  const component = fc.constantFrom('a', 'b', '..', '.', '', 'outside', 'lower', 'snap', 'secret', 'dir', 'etc-link', 'l');
  const prefix = fc.constantFrom('', '/', './', '../', '../../', `${sandbox}/`, `${sandbox}/outside/`, '/proc/self/root/');
  const name = fc.tuple(prefix, fc.array(component, { minLength: 1, maxLength: 4 })).map(([p, cs]) => p + cs.join('/'));
  const longName = fc.tuple(name, fc.nat(300)).map(([n, k]) => `${'a/'.repeat(40 + (k % 60))}${n}`);
  const target = fc.oneof(
    name,
    fc.constantFrom('..', '../..', '/', sandbox, `${sandbox}/outside`, `${sandbox}/outside/secret`, '../outside/secret', '/a/../..', 'l', '.', ''),
  );
  const owner = { uid: fc.constantFrom(0, 1, 65534), gid: fc.constantFrom(0, 1, 65534) };
  const mode = fc.constantFrom(0o644, 0o755, 0o4755, 0o777, 0o000);
  const xattrs = fc.option(
    fc.constantFrom<Record<string, string | Buffer>>(
      { 'user.k': 'v' },
      { 'trusted.overlay.opaque': 'y' },
      { 'trusted.overlay.redirect': '/outside' },
      { 'user.big': Buffer.alloc(1024 * 1024 + 1, 7) },
    ),
    { freq: 8, nil: undefined },
  );
  const entry: fc.Arbitrary<LayerEntry> = fc.oneof(
    fc.record({
      type: fc.constant('file' as const),
      name: fc.oneof(name, longName),
      content: fc.string({ maxLength: 20 }),
      mode,
      ...owner,
      xattrs,
      gnuLongName: fc.boolean(),
    }),
    fc.record({ type: fc.constant('dir' as const), name, mode, ...owner, xattrs }),
    fc.record({ type: fc.constant('symlink' as const), name, target, ...owner }),
    fc.record({ type: fc.constant('link' as const), name, target, mode, ...owner }),
    fc.record({ type: fc.constant('fifo' as const), name, mode, ...owner }),
    fc.record({
      type: fc.constantFrom('char' as const, 'block' as const),
      name,
      major: fc.constantFrom(0, 1, 7),
      minor: fc.constantFrom(0, 3, 5),
      mode,
      ...owner,
    }),
    fc.record({
      type: fc.constant('whiteout' as const),
      name: fc.oneof(
        name,
        fc.tuple(name, fc.constantFrom('', '.', '..', '...', '.wh.', '.wh..wh..opq', '.wh..wh.plnk')).map(([d, b]) => `${d}/${b}`),
      ),
    }),
    fc.record({ type: fc.constant('opaque' as const), name }),
  );
  // Known shapes of escape, so that they come up often: write below a name, then make the name a
  // symlink out of the root (deferred work such as directory times, xattrs and device nodes must
  // not follow it), or the other way round.
  const out = fc.constantFrom(`${sandbox}/outside`, `${sandbox}/outside`, '../outside', '../..', '/', `${sandbox}`);
  const trick: fc.Arbitrary<LayerEntry[]> = fc.tuple(fc.constantFrom('t', 'u/t'), out, fc.constantFrom('dir', 'secret', 'x')).chain(([t, to, leaf]) =>
    fc.shuffledSubarray<LayerEntry>(
      [
        { type: 'dir', name: `${t}/${leaf}`, mode: 0o700 },
        { type: 'file', name: `${t}/${leaf}`, content: 'pwned', mode: 0o4755, xattrs: { 'user.k': 'v' } },
        { type: 'fifo', name: `${t}/${leaf}`, uid: 1 },
        { type: 'symlink', name: t, target: to },
        { type: 'link', name: 'h', target: `${t}/${leaf}` },
        { type: 'whiteout', name: `${t}/${leaf}` },
        { type: 'opaque', name: t },
      ],
      { minLength: 2 },
    ),
  );
  // Most hostile entries fail the layer, and work deferred to the end of a layer (directory times,
  // xattrs) then never runs: layers of tricks alone reach it.
  const layer = fc.oneof(
    fc.array(trick, { minLength: 1, maxLength: 3 }).map((parts) => parts.flat()),
    fc
      .array(
        fc.oneof(
          entry.map((e) => [e]),
          trick,
        ),
        { minLength: 1, maxLength: 8 },
      )
      .map((parts) => parts.flat()),
  );
  return fc.record({
    whiteouts: fc.constantFrom<WhiteoutMode>('native', 'overlay'),
    compression: fc.constantFrom('none' as const, 'gzip' as const),
    layers: fc.array(layer, { minLength: 1, maxLength: 3 }),
  });
}

describe.each(APPLY_PATHS)('%s apply path', (_path, applyLayer) => {
  describe('fuzz: hostile layers', () => {
    it(
      'never create, change or remove anything outside the snapshot, and fail only with a BerthError',
      async () => {
        await fc.assert(
          fc.asyncProperty(hostileStack(), async (stack) => {
            freshSandbox();
            const before = tree(sandbox, snap);
            try {
              await applyStack(applyLayer, stack.layers, { whiteouts: stack.whiteouts, compression: stack.compression, parents: [`${sandbox}/lower`] });
            } catch (err) {
              expect(err, String((err as Error)?.stack)).toBeInstanceOf(BerthError);
              // A crash of the native helper is a BerthError too, but not a refusal.
              expect((err as Error).message).not.toMatch(/the layer-apply helper (was killed|exited)/);
            }
            expect(readdirSync(sandbox).sort()).toEqual(['lower', 'outside', 'snap']);
            expect([readdirSync(base), readdirSync(`${base}/up`)]).toEqual([['up'], ['sb']]);
            expect(tree(sandbox, snap)).toEqual(before);
          }),
          fuzzParams(60, HOSTILE_REGRESSIONS),
        );
      },
      FUZZ_TIMEOUT,
    );
  });
});

// ------------------------------------------------------------------------------------------- benign

/** A file's inode in the model: hardlinks share it, so a chmod through one shows through all. */
interface Inode {
  content: string;
  mode: number;
  uid: number;
  gid: number;
}
type Node =
  | { type: 'file'; inode: Inode }
  | { type: 'dir'; mode: number; uid: number; gid: number }
  | { type: 'symlink'; target: string; uid: number; gid: number };
type Model = Map<string, Node>;

const under = (path: string, dir: string) => dir === '' || path === dir || path.startsWith(dir + '/');
const removeTree = (m: Model, path: string) => {
  for (const k of [...m.keys()]) if (under(k, path)) m.delete(k);
};
const ancestors = (path: string) => {
  const out: string[] = [];
  for (let d = posix.dirname(path); d !== '.'; d = posix.dirname(d)) out.unshift(d);
  return out;
};

/**
 * containerd's rules for one layer in native form, on the model. Returns false (model unchanged
 * for that entry) for an entry a real layer could not apply: one below a file or a symlink, or a
 * hardlink to something that is not a file.
 */
function applyToModel(m: Model, e: LayerEntry, written: Set<string>): boolean {
  const path = e.type === 'opaque' ? e.name : e.name;
  const dirsNeeded = e.type === 'opaque' ? [...ancestors(path), path] : ancestors(path);
  if (dirsNeeded.some((d) => m.has(d) && m.get(d)!.type !== 'dir')) return false;
  if (e.type === 'link' && (m.get(e.target)?.type !== 'file' || under(e.target, path))) return false;
  for (const d of dirsNeeded) if (!m.has(d)) m.set(d, { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  switch (e.type) {
    case 'whiteout':
      removeTree(m, path);
      return true;
    case 'opaque':
      for (const k of [...m.keys()]) {
        if (k !== path && under(k, path) && !written.has(k) && m.has(k)) removeTree(m, k);
      }
      return true;
    case 'file':
      removeTree(m, path);
      m.set(path, { type: 'file', inode: { content: String(e.content ?? ''), mode: e.mode ?? 0o644, uid, gid } });
      break;
    case 'dir': {
      const old = m.get(path);
      if (old?.type !== 'dir') removeTree(m, path);
      m.set(path, { type: 'dir', mode: e.mode ?? 0o755, uid, gid });
      break;
    }
    case 'symlink':
      removeTree(m, path);
      m.set(path, { type: 'symlink', target: e.target, uid, gid });
      break;
    case 'link': {
      const inode = (m.get(e.target) as { inode: Inode }).inode;
      removeTree(m, path);
      Object.assign(inode, { uid, gid, mode: e.mode ?? 0o644 });
      m.set(path, { type: 'file', inode });
      break;
    }
    default:
      return false;
  }
  written.add(path);
  return true;
}

function describeModel(m: Model): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, n] of m) {
    if (n.type === 'file') out[k] = `file ${n.inode.mode.toString(8)} ${n.inode.uid}:${n.inode.gid} ${JSON.stringify(n.inode.content)}`;
    else if (n.type === 'dir') out[k] = `dir ${n.mode.toString(8)} ${n.uid}:${n.gid}`;
    else out[k] = `symlink ${n.uid}:${n.gid} -> ${n.target}`;
  }
  return out;
}

function describeDisk(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? `${root}/${rel}` : root)) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(`${root}/${r}`);
      const owner = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)} ${owner}`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `symlink ${owner} -> ${readlinkSync(`${root}/${r}`)}`;
      else out[r] = `file ${(st.mode & 0o7777).toString(8)} ${owner} ${JSON.stringify(readFileSync(`${root}/${r}`, 'utf8'))}`;
    }
  };
  walk('');
  return out;
}

function benignStack(): fc.Arbitrary<LayerEntry[][]> {
  const path = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }).map((cs) => cs.join('/'));
  const owner = { uid: fc.constantFrom(0, 1, 1000), gid: fc.constantFrom(0, 1, 1000) };
  const entry: fc.Arbitrary<LayerEntry> = fc.oneof(
    fc.record({
      type: fc.constant('file' as const),
      name: path,
      content: fc.string({ maxLength: 8 }),
      mode: fc.constantFrom(0o644, 0o755, 0o600, 0o4755),
      ...owner,
    }),
    fc.record({ type: fc.constant('dir' as const), name: path, mode: fc.constantFrom(0o755, 0o700, 0o1777), ...owner }),
    fc.record({ type: fc.constant('symlink' as const), name: path, target: fc.constantFrom('a', '../b', '/etc/passwd', 'c/a'), ...owner }),
    fc.record({ type: fc.constant('link' as const), name: path, target: path, mode: fc.constantFrom(0o644, 0o755), ...owner }),
    fc.record({ type: fc.constant('whiteout' as const), name: path }),
    fc.record({ type: fc.constant('opaque' as const), name: path }),
  );
  return fc.array(fc.array(entry, { minLength: 1, maxLength: 15 }), { minLength: 1, maxLength: 3 });
}

describe.each(APPLY_PATHS)('%s apply path', (_path, applyLayer) => {
  describe('fuzz: benign layers', () => {
    it(
      'unpack (native form) to the tree the model gives',
      async () => {
        await fc.assert(
          fc.asyncProperty(benignStack(), async (generated) => {
            freshSandbox();
            // Keep only what a real layer could hold at that point, as the model says.
            const model: Model = new Map();
            const layers = generated.map((entries) => {
              const written = new Set<string>();
              return entries.filter((e) => applyToModel(model, e, written));
            });
            await applyStack(
              applyLayer,
              layers.filter((l) => l.length > 0),
              { whiteouts: 'native' },
            );
            expect(describeDisk(snap)).toEqual(describeModel(model));
          }),
          fuzzParams(60, BENIGN_REGRESSIONS),
        );
      },
      FUZZ_TIMEOUT,
    );
  });
});

// ------------------------------------------------------------------------------------ differential

/**
 * What a stack leaves in the snapshot, alike on every apply path: type, mode, owner, size,
 * content, link target, device, link count and extended attributes (not inodes, nor times that
 * come from the clock rather than the layer: implied dirs, whiteout devices).
 */
function outcome(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    for (const name of readdirSync(p).sort()) {
      const path = `${p}/${name}`;
      const st = lstatSync(path);
      let body = '';
      if (st.isSymbolicLink()) body = `-> ${readlinkSync(path)} m=${st.mtimeMs}`;
      else if (st.isFile()) body = `${createHash('sha256').update(readFileSync(path)).digest('hex')} m=${st.mtimeMs}`;
      else if (!st.isDirectory()) body = `rdev=${st.rdev}`;
      out[path.slice(dir.length)] = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} n=${st.nlink} ${body}`;
      if (st.isDirectory()) walk(path);
    }
  };
  walk(dir);
  // Every file's extended attributes, from one getfattr (one block a file, in no set order).
  const dump = execFileSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir], { encoding: 'utf8' });
  out[' xattrs'] = dump.split('\n\n').sort().join('\n\n');
  return out;
}

describe('fuzz: the apply paths agree', () => {
  it(
    'fail alike on hostile stacks, and leave the same snapshot when they succeed',
    async () => {
      await fc.assert(
        fc.asyncProperty(hostileStack(), async (stack) => {
          // A file with data named `x/`: libarchive would read its data as entries, so the native
          // path refuses such a layer, which the JavaScript path applies (see apply-layer.c).
          fc.pre(!stack.layers.flat().some((e) => e.type === 'file' && e.name.endsWith('/') && String(e.content ?? '') !== ''));
          const results = [];
          for (const [path, applyLayer] of APPLY_PATHS) {
            freshSandbox();
            let failure = 'ok';
            try {
              await applyStack(applyLayer, stack.layers, { whiteouts: stack.whiteouts, compression: stack.compression, parents: [`${sandbox}/lower`] });
            } catch (err) {
              // Refusals by rule (hostile names, bounds) are worded alike. Other failures may differ in
              // kind: the JavaScript path makes devices at the end of a layer, the native one at once
              // (`a` a device, then `a/f`: EEXIST at the end, or "not a directory" at `a/f`), and a
              // tar stream tar-stream cannot parse is Internal there, Corrupt natively. A symlink loop
              // is named without the layer on the JavaScript path (confine.ts), with it natively.
              const e = err as BerthError;
              const message = e.message.replace(/^layer sha256:[0-9a-f]{64}: (too many symlinks)/, '$1');
              failure = e.kind === 'InvalidArgument' || e.kind === 'ResourceExhausted' ? `${e.kind}: ${message}` : 'failed';
            }
            // After a failure the caller discards the snapshot: what a path had done by then may differ.
            results.push({ path, failure, snapshot: failure === 'ok' ? outcome(snap) : undefined });
          }
          const [js, ...others] = results;
          for (const other of others) expect({ ...other, path: js!.path }).toEqual(js);
        }),
        fuzzParams(60),
      );
    },
    FUZZ_TIMEOUT,
  );
});
