/**
 * What only the native apply path has: a process per layer. Aborting kills it and waits for it,
 * so nothing is written after the promise settles; a helper that dies mid-layer, or a source that
 * fails, is an error and not a hang; the helper's reports become berth errors; and the build at
 * first use says which package is missing. The rules themselves are tested on both paths by
 * apply.test.ts, apply-limits.test.ts and test/fuzz/layers.test.ts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayerNative, ensureApplyHelper } from '../../src/diff/native-apply.ts';
import { BerthError } from '../../src/errors.ts';
import { nativeHelper } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar } from '../helpers/layers.ts';

const TAR = 'application/vnd.oci.image.layer.v1.tar';
let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/diff needs root (lchown)');
  tmp = mkdtempSync(`${tmpdir()}/berth-native-apply-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function freshRoot(): string {
  const d = `${tmp}/r${n++}`;
  mkdirSync(d);
  return d;
}

/** Pids of processes whose command line holds `--root <root>`: the helpers applying into it. */
function helpersFor(root: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(`\0--root\0${root}\0`)) pids.push(Number(p));
    } catch {}
  }
  return pids;
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

/** The first 1 KiB of an uncompressed layer: `first` whole; the helper then waits for more. */
async function firstEntryOnly(): Promise<Buffer> {
  return (await makeLayerTar([{ type: 'file', name: 'first', content: 'one' }])).subarray(0, 1024);
}

describe('native apply: the helper process', () => {
  it('is killed on abort and waited for: nothing is written after the promise settles', async () => {
    const root = freshRoot();
    const ac = new AbortController();
    const source = new PassThrough();
    const applied = applyLayerNative(source, { root, mediaType: TAR, whiteouts: 'overlay', signal: ac.signal, helper: await nativeHelper() });
    source.write(await firstEntryOnly());
    await until(() => existsSync(`${root}/first`));
    expect(helpersFor(root)).toHaveLength(1);
    ac.abort();
    const err = await applied.catch((e) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect(err.kind).toBe('Aborted');
    expect(helpersFor(root)).toEqual([]);
    expect(source.destroyed).toBe(true);
  });

  it('fails, and does not hang, when the helper dies mid-layer', async () => {
    const root = freshRoot();
    const source = new PassThrough();
    const applied = applyLayerNative(source, { root, mediaType: TAR, whiteouts: 'overlay', layerDigest: 'sha256:feed', helper: await nativeHelper() });
    source.write(await firstEntryOnly());
    await until(() => existsSync(`${root}/first`));
    const [pid] = helpersFor(root);
    process.kill(pid!, 'SIGKILL');
    const err = await applied.catch((e) => e);
    expect(err.kind).toBe('Internal');
    expect(err.message).toMatch(/^layer sha256:feed: the layer-apply helper was killed by SIGKILL without a result/);
  });

  it('fails with the source stream error and stops the helper', async () => {
    const root = freshRoot();
    const source = new PassThrough();
    const applied = applyLayerNative(source, { root, mediaType: TAR, whiteouts: 'overlay', layerDigest: 'sha256:feed', helper: await nativeHelper() });
    source.write(await firstEntryOnly());
    await until(() => existsSync(`${root}/first`));
    source.destroy(new Error('connection reset'));
    const err = await applied.catch((e) => e);
    expect(err.kind).toBe('Internal');
    expect(err.message).toBe('layer sha256:feed: apply failed: connection reset');
    expect(helpersFor(root)).toEqual([]);
  });

  it('applies a layer whose source is read with backpressure, as many chunks', async () => {
    const root = freshRoot();
    const files = Array.from({ length: 64 }, (_, i) => ({ type: 'file' as const, name: `f${i}`, content: Buffer.alloc(256 * 1024, i) }));
    const layer = compressLayer(await makeLayerTar(files), 'gzip');
    const chunks = Array.from({ length: Math.ceil(layer.blob.length / 4096) }, (_, i) => layer.blob.subarray(i * 4096, (i + 1) * 4096));
    const res = await applyLayerNative(Readable.from(chunks), {
      root,
      mediaType: layer.mediaType,
      whiteouts: 'overlay',
      expectedDiffId: layer.diffId,
      helper: await nativeHelper(),
    });
    expect(res.entries).toBe(64);
    expect(readFileSync(`${root}/f63`)).toEqual(Buffer.alloc(256 * 1024, 63));
  });
});

describe('native apply: where tar readers disagree', () => {
  it('refuses a file with data whose name ends in a slash (libarchive would read its data as entries)', async () => {
    const root = freshRoot();
    // The file's data is a whole tar entry: read as headers, it would write `smuggled`.
    const inner = (await makeLayerTar([{ type: 'file', name: 'smuggled', content: 'x' }])).subarray(0, 1024);
    const layer = compressLayer(await makeLayerTar([{ type: 'file', name: 'f/', content: inner }]), 'none');
    const err = await applyLayerNative(Readable.from([layer.blob]), {
      root,
      mediaType: layer.mediaType,
      whiteouts: 'overlay',
      layerDigest: layer.digest,
      helper: await nativeHelper(),
    }).catch((e) => e);
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toBe(`layer ${layer.digest}: refusing entry f/: a file with data whose name ends in '/' (tar readers disagree on what follows it)`);
    expect(existsSync(`${root}/smuggled`)).toBe(false);
  });
});

describe('native apply: the reports of the helper', () => {
  /** A stand-in helper: a shell script printing `stdout` and `stderr`, then exiting with `code`. */
  function fakeHelper(stdout: string, code: number, stderr = ''): string {
    const p = `${tmp}/fake${n++}`;
    writeFileSync(p, `#!/bin/sh\nprintf '%s' '${stdout.replace(/'/g, `'\\''`)}'\nprintf '%s' '${stderr}' >&2\nexit ${code}\n`);
    chmodSync(p, 0o755);
    return p;
  }
  const run = (helper: string, warn?: (m: string) => void) =>
    applyLayerNative(Readable.from([Buffer.alloc(1024)]), { root: freshRoot(), mediaType: TAR, whiteouts: 'native', layerDigest: 'sha256:feed', helper, warn });

  it('turns an error line into a BerthError of its kind, naming the layer and the place', async () => {
    const err = await run(fakeHelper('{"error":{"kind":"FailedPrecondition","message":"/r/a is not a directory","place":"/r/a"}}\n', 1)).catch((e) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect(err.kind).toBe('FailedPrecondition');
    expect(err.message).toBe('layer sha256:feed: /r/a is not a directory');
    expect(err.place).toEqual({ file: '/r/a' });
    const odd = await run(fakeHelper('{"error":{"kind":"Weird","message":"m"}}\n', 1)).catch((e) => e);
    expect(odd.kind).toBe('Internal');
  });

  it('decodes raw name bytes (latin1 in the protocol) back to UTF-8', async () => {
    const warnings: string[] = [];
    const res = await run(
      fakeHelper('{"warn":"skipping caf\\u00c3\\u00a9"}\n{"ok":{"diffId":"sha256:ab","size":1024,"entries":1,"impliedDirs":["caf\\u00c3\\u00a9"]}}\n', 0),
      (m) => warnings.push(m),
    );
    expect(warnings).toEqual(['layer sha256:feed: skipping café']);
    expect(res).toEqual({ diffId: 'sha256:ab', size: 1024, entries: 1, impliedDirs: ['café'] });
  });

  it('words a limit the helper hit as LayerBudget does', async () => {
    const err = await run(fakeHelper('{"limit":{"what":"header","type":"pax-header","size":2097152}}\n', 1)).catch((e) => e);
    expect(err.kind).toBe('ResourceExhausted');
    expect(err.message).toBe('layer sha256:feed: a pax-header header of 2.0 MiB is over the limit of 1.0 MiB (unpack.max_header_size)');
  });

  it('reports a helper that ends without a result, with its stderr', async () => {
    const err = await run(fakeHelper('', 3, 'something broke')).catch((e) => e);
    expect(err.kind).toBe('Internal');
    expect(err.message).toBe('layer sha256:feed: the layer-apply helper exited 3 without a result: something broke');
  });
});

describe('native apply: building the helper', () => {
  async function withEnv<T>(env: Record<string, string | undefined>, f: () => Promise<T>): Promise<T> {
    const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    try {
      return await f();
    } finally {
      for (const [k, v] of Object.entries(old)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  it('uses $BERTH_APPLY_HELPER as it is', async () => {
    expect(await withEnv({ BERTH_APPLY_HELPER: '/opt/helper' }, () => ensureApplyHelper(`${tmp}/cache-override`))).toBe('/opt/helper');
  });

  it('builds once into a content-addressed path, and says which package is missing when it cannot', async () => {
    const cache = `${tmp}/cache-build`;
    const built = await withEnv({ BERTH_APPLY_HELPER: undefined }, () => ensureApplyHelper(cache));
    expect(built).toMatch(/\/berth-apply-layer-[0-9a-f]{12}$/);
    expect(await withEnv({ BERTH_APPLY_HELPER: undefined, CC: '/nonexistent/cc' }, () => ensureApplyHelper(cache))).toBe(built);

    const noCc = await withEnv({ BERTH_APPLY_HELPER: undefined, CC: '/nonexistent/cc' }, () => ensureApplyHelper(`${tmp}/cache-none`)).catch((e) => e);
    expect(noCc.kind).toBe('FailedPrecondition');
    expect(noCc.message).toMatch(/no C compiler "\/nonexistent\/cc".*apt-get install gcc/);
    const cc = `${tmp}/cc-without-headers`;
    writeFileSync(cc, '#!/bin/sh\necho "apply-layer.c:1:10: fatal error: archive.h: No such file or directory" >&2\nexit 1\n');
    chmodSync(cc, 0o755);
    const noHeaders = await withEnv({ BERTH_APPLY_HELPER: undefined, CC: cc }, () => ensureApplyHelper(`${tmp}/cache-headers`)).catch((e) => e);
    expect(noHeaders.kind).toBe('FailedPrecondition');
    expect(noHeaders.message).toMatch(/apt-get install libarchive-dev.*archive\.h: No such file/);
    expect(readdirSync(`${tmp}/cache-headers`)).toEqual([]); // no temp file left behind
  });
});
