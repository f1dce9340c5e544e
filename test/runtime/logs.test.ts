/**
 * Logs that say when and where (issue 11): berth-shim writes CRI records (time, stream, P/F) and
 * `berth logs` prints, filters and reassembles them, across rotation, old-format files included.
 * Real runc, the real shim, the CLI through bin/berth.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, makeBusyboxRootfs, openRuntime, request, requireRoot, tempDir, until } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const exec = promisify(execFile);
const RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$/s; // s: a terminal ends lines with \r

describe('berth logs: time, stream, partial lines, rotation', () => {
  let root: string;
  let berthRoot: string;
  let rt: Runtime;
  let rootfs: string;
  const berth = (...args: string[]) =>
    exec(BERTH, ['--config', path.join(root, 'none.toml'), '--root', berthRoot, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 });
  const rawRecords = async (name: string, file = 'log') => (await readFile(path.join(rt.containerDir(name), file), 'utf8')).split('\n').filter(Boolean);
  const exited = (name: string) => until(async () => (await rt.status(name)).state === 'exited', 20_000, `${name} to exit`);

  beforeAll(async () => {
    requireRoot();
    root = await tempDir('logs');
    berthRoot = path.join(root, 'berth');
    rootfs = await makeBusyboxRootfs(path.join(root, 'image'));
    await symlink('busybox', path.join(rootfs, 'bin/tr'));
    // Small files, so that a few dozen lines rotate; enough of them that a follower never falls behind.
    rt = await openRuntime(berthRoot, { logMaxBytes: 1000, logMaxFiles: 10 });
  });
  afterAll(async () => cleanup(rt, root));

  it('records each line with its time and stream, and prints the text, or the time first with --timestamps', async () => {
    const before = Date.now();
    await rt.create(request('both', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo to-out; echo to-err >&2; echo out-again'] }));
    await rt.start('both');
    await exited('both');
    const records = (await rawRecords('both')).map((l) => RECORD.exec(l));
    expect(records.every(Boolean)).toBe(true);
    const byStream = (s: string) => records.filter((m) => m![2] === s).map((m) => m![4]);
    expect(byStream('stdout')).toEqual(['to-out', 'out-again']);
    expect(byStream('stderr')).toEqual(['to-err']);
    for (const m of records) {
      expect(m![3]).toBe('F');
      expect(Date.parse(m![1]!)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(m![1]!)).toBeLessThanOrEqual(Date.now());
    }

    const plain = (await berth('logs', 'both')).stdout.split('\n').filter(Boolean);
    expect(plain.sort()).toEqual(['out-again', 'to-err', 'to-out']);
    const stamped = (await berth('logs', '--timestamps', 'both')).stdout.split('\n').filter(Boolean);
    expect(stamped).toHaveLength(3);
    for (const l of stamped) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (to-out|to-err|out-again)$/);
  });

  it('--stream stderr prints only stderr, --stream stdout only stdout', async () => {
    expect((await berth('logs', '--stream', 'stderr', 'both')).stdout).toBe('to-err\n');
    expect((await berth('logs', '--stream', 'stdout', 'both')).stdout).toBe('to-out\nout-again\n');
    expect((await berth('logs', '--stream', 'stdout', '--tail', '1', 'both')).stdout).toBe('out-again\n');
    const err = await berth('logs', '--stream', 'stdin', 'both').then(
      () => undefined,
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('--stream');
  });

  it('--since a time or a duration keeps the lines read since then', async () => {
    // The container prints "early", then waits for the test to make /tmp/go before printing "late".
    await rt.create(
      request('since', bindRootfs(rootfs), {
        args: ['/bin/sh', '-c', 'echo early; while [ ! -e /tmp/go-since ]; do sleep 0.05; done; echo late'],
      }),
    );
    await rt.start('since');
    await until(async () => (await rawRecords('since').catch(() => [])).length === 1);
    const earlyAt = Date.parse(RECORD.exec((await rawRecords('since'))[0]!)![1]!);
    // The split point: strictly after "early" was read, before "late" can be.
    await until(async () => Date.now() > earlyAt + 5 && true);
    const split = new Date().toISOString();
    await writeFile(path.join(rootfs, 'tmp/go-since'), '');
    await exited('since');
    expect((await berth('logs', '--since', split, 'since')).stdout).toBe('late\n');
    expect((await berth('logs', '--since', '1h', 'since')).stdout).toBe('early\nlate\n');
    expect((await berth('logs', '--since', '2999-01-01T00:00:00Z', 'since')).stdout).toBe('');
  });

  it('a 100 KiB line without a newline is written in P pieces and printed whole', async () => {
    await rt.create(
      request('long', bindRootfs(rootfs), {
        args: ['/bin/sh', '-c', "echo before; head -c 102400 /dev/zero | tr '\\000' a; sleep 0.1; echo; echo after >&2"],
      }),
    );
    await rt.start('long');
    await exited('long');
    const records = (await readdir(rt.containerDir('long'))).filter((f) => /^log(\.\d+)?$/.test(f));
    const all: string[] = [];
    for (const f of records.sort().reverse()) all.push(...(await rawRecords('long', f))); // log.N … log.1, log
    const tags = all
      .map((l) => RECORD.exec(l))
      .filter((m) => m && m[2] === 'stdout')
      .map((m) => m![3]);
    expect(tags.filter((t) => t === 'P').length).toBeGreaterThanOrEqual(6); // 16 KiB pieces
    expect(tags.at(-1)).toBe('F');
    const lines = (await berth('logs', 'long')).stdout.split('\n');
    expect(lines.slice(0, -1).sort()).toEqual(['a'.repeat(102400), 'after', 'before'].sort());
    expect((await berth('logs', '--stream', 'stdout', '--tail', '1', 'long')).stdout).toBe('a'.repeat(102400) + '\n');
  });

  it('rotation keeps working and logs -f follows across it, times included', async () => {
    await rt.create(
      request('rot', bindRootfs(rootfs), {
        args: ['/bin/sh', '-c', 'i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo "line-$i"; sleep 0.03; done'],
      }),
    );
    await rt.start('rot');
    await until(async () => (await rawRecords('rot').catch(() => [])).length > 0);
    const { stdout } = await berth('logs', '-f', '--timestamps', 'rot');
    const lines = stdout.trim().split('\n');
    expect(lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(Array.from({ length: 60 }, (_, i) => `line-${i + 1}`));
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line-\d+$/);
    const files = (await readdir(rt.containerDir('rot'))).filter((f) => /^log(\.\d+)?$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect((await berth('logs', '--tail', '2', 'rot')).stdout).toBe('line-59\nline-60\n');
  });

  it('a log written before the upgrade (no prefix) still prints, as stdout of unknown time', async () => {
    await rt.create(request('old', bindRootfs(rootfs), { args: ['/bin/true'] }));
    const dir = rt.containerDir('old');
    await writeFile(path.join(dir, 'log.1'), 'old one\nold two\n');
    await writeFile(path.join(dir, 'log'), 'old three\n2026-12-02T06:00:00.123456789Z stderr F new err\n2026-12-02T06:00:01.5Z stdout F new out\n');
    expect((await berth('logs', 'old')).stdout).toBe('old one\nold two\nold three\nnew err\nnew out\n');
    expect((await berth('logs', '--stream', 'stdout', 'old')).stdout).toBe('old one\nold two\nold three\nnew out\n');
    expect((await berth('logs', '--tail', '3', 'old')).stdout).toBe('old three\nnew err\nnew out\n');
    expect((await berth('logs', '--since', '2026-12-02T06:00:01Z', 'old')).stdout).toBe('new out\n');
    expect((await berth('logs', '--timestamps', '--tail', '2', 'old')).stdout).toBe('2026-12-02T06:00:00.123456789Z new err\n2026-12-02T06:00:01.5Z new out\n');
  });

  it('a container with a terminal logs it as stdout', async () => {
    await rt.create(request('tty', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo on-tty; echo err-on-tty >&2'], tty: true }));
    await rt.start('tty');
    await exited('tty');
    await until(async () => (await rawRecords('tty').catch(() => [])).length >= 2);
    const streams = (await rawRecords('tty')).map((l) => RECORD.exec(l)?.[2]);
    expect(streams.length).toBeGreaterThanOrEqual(2);
    expect(new Set(streams)).toEqual(new Set(['stdout']));
    expect((await berth('logs', '--stream', 'stdout', 'tty')).stdout).toContain('err-on-tty');
  });
});
