import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CHelperBuild, ensureCHelper } from '../../src/c-helper.ts';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(`${tmpdir()}/berth-c-helper-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * A compiler that logs each build's arguments, fails on any argument matching `refuse`, else writes
 * `-o`'s file; asked `-print-file-name=LIB`, it names `<tmp>/libs/LIB` if that file exists.
 */
function fakeCc(refuse: string): string {
  const cc = `${tmp}/cc-${Math.random().toString(36).slice(2)}`;
  writeFileSync(
    cc,
    `#!/bin/sh\ncase "$1" in -print-file-name=*) f=${tmp}/libs/\${1#-print-file-name=}; [ -f "$f" ] && echo "$f" || echo "\${1#-print-file-name=}"; exit 0;; esac\n` +
      `echo "$*" >> ${cc}.log\nfor a; do case "$a" in ${refuse}) echo "ld: cannot find $a" >&2; exit 1;; esac; done\n` +
      `while [ "$1" != -o ]; do shift; done\nprintf '#!/bin/sh\\n' > "$2"; chmod +x "$2"\n`,
  );
  chmodSync(cc, 0o755);
  return cc;
}

const builds = (cc: string) => readFileSync(`${cc}.log`, 'utf8').trim().split('\n').length;

async function withCc<T>(cc: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.CC;
  process.env.CC = cc;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.CC;
    else process.env.CC = saved;
  }
}

describe('ensureCHelper', () => {
  const build = (): CHelperBuild => {
    const source = `${tmp}/prog.c`;
    writeFileSync(source, 'int main(void) { return 0; }\n');
    return {
      source,
      name: 'prog',
      describe: 'the test program',
      overrideVar: 'BERTH_TEST_PROG',
      linkVariants: [{ args: ['-static-lib'], staticLibs: ['libfake.a'] }, { args: ['-shared-lib'] }],
      missingPackage: (out) => (/-static-lib/.test(out) ? 'libstatic-dev' : undefined),
    };
  };

  it('links with the first variant that builds, once, and reuses the binary', async () => {
    const cc = fakeCc('-static-lib');
    const cache = `${tmp}/cache-fallback`;
    const built = await withCc(cc, () => ensureCHelper(build(), cache));
    expect(built).toMatch(/\/prog-[0-9a-f]{12}$/);
    expect(readFileSync(`${cc}.log`, 'utf8').trim().split('\n')).toEqual([expect.stringContaining('-static-lib'), expect.stringContaining('-shared-lib')]);
    expect(await withCc('/nonexistent/cc', () => ensureCHelper(build(), cache))).toBe(built);
    expect(readdirSync(cache).sort()).toEqual([built.split('/').pop(), `${built.split('/').pop()}.deps`]);
  });

  it('builds again when a static library it linked in changed (an upgrade), and only then', async () => {
    mkdirSync(`${tmp}/libs`, { recursive: true });
    const lib = `${tmp}/libs/libfake.a`;
    writeFileSync(lib, 'v1');
    utimesSync(lib, new Date(1_000_000), new Date(1_000_000));
    const cc = fakeCc('-never');
    const cache = `${tmp}/cache-upgrade-lib`;
    const built = await withCc(cc, () => ensureCHelper(build(), cache));
    expect(await withCc(cc, () => ensureCHelper(build(), cache))).toBe(built);
    expect(builds(cc)).toBe(1);
    writeFileSync(lib, 'v2, a security fix');
    expect(await withCc(cc, () => ensureCHelper(build(), cache))).toBe(built);
    expect(builds(cc)).toBe(2);
    expect(await withCc(cc, () => ensureCHelper(build(), cache))).toBe(built);
    expect(builds(cc)).toBe(2);
    // A crash between the binary's rename and its record's leaves a binary without one: built again.
    rmSync(`${built}.deps`);
    expect(await withCc(cc, () => ensureCHelper(build(), cache))).toBe(built);
    expect(builds(cc)).toBe(3);
  });

  it('names the missing package from the last error when no variant builds, and leaves no temp file', async () => {
    const cc = fakeCc('-s*');
    const cache = `${tmp}/cache-none`;
    const err = await withCc(cc, () =>
      ensureCHelper({ ...build(), missingPackage: (out) => (/-shared-lib/.test(out) ? 'libshared-dev' : undefined) }, cache),
    ).catch((e) => e);
    expect(err.kind).toBe('FailedPrecondition');
    expect(err.message).toMatch(
      /cannot build the test program from .*prog\.c \(install it with `apt-get install libshared-dev`\): ld: cannot find -shared-lib/,
    );
    expect(readdirSync(cache)).toEqual([]);
  });

  it('removes binaries built from an older source', async () => {
    const cc = fakeCc('-never');
    const cache = `${tmp}/cache-upgrade`;
    const b = build();
    const first = await withCc(cc, () => ensureCHelper(b, cache));
    writeFileSync(b.source, 'int main(void) { return 1; }\n');
    const second = await withCc(cc, () => ensureCHelper(b, cache));
    expect(second).not.toBe(first);
    expect(readdirSync(cache).sort()).toEqual([second.split('/').pop(), `${second.split('/').pop()}.deps`]);
  });
});
