/**
 * The two system calls Node lacks, mknod(2) and lsetxattr(2), done in batches by the standard
 * tools (coreutils `mknod`, `setfattr` from Debian's `attr`): one child process per batch instead
 * of one per entry, so a layer with thousands of xattrs costs one spawn.
 */
import { spawn } from 'node:child_process';
import { BerthError } from '../errors.ts';

export interface NodeOp {
  path: string;
  kind: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  /** Permission bits (07777). */
  mode: number;
}

// Positional parameters carry the paths, so no name is ever parsed by the shell.
const MKNOD_SCRIPT =
  'while [ $# -gt 0 ]; do ' +
  'if [ "$2" = p ]; then mknod -m "$5" -- "$1" p || exit 1; ' +
  'else mknod -m "$5" -- "$1" "$2" "$3" "$4" || exit 1; fi; shift 5; done';

/** Argument bytes per spawn, well under ARG_MAX. */
const MAX_ARG_BYTES = 512 * 1024;

function run(cmd: string, args: string[], input: string | Buffer | undefined, signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.on('error', (err) => reject(new BerthError('Unavailable', `cannot run ${cmd}: ${err.message}`, { cause: err })));
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Create device nodes and FIFOs. Fails (naming the first error) if any cannot be made. */
export async function mknodBatch(ops: NodeOp[], signal?: AbortSignal): Promise<void> {
  let i = 0;
  while (i < ops.length) {
    const args: string[] = [];
    let bytes = 0;
    for (; i < ops.length && bytes < MAX_ARG_BYTES; i++) {
      const o = ops[i]!;
      // Permission bits only: coreutils mknod refuses -m with setuid/setgid/sticky; the caller sets those after chown.
      args.push(o.path, o.kind, String(o.major), String(o.minor), (o.mode & 0o777).toString(8));
      bytes += Buffer.byteLength(o.path) + 32;
    }
    const { code, stderr } = await run('sh', ['-c', MKNOD_SCRIPT, 'sh', ...args], undefined, signal);
    if (code !== 0) {
      throw new BerthError('Internal', `mknod failed: ${stderr.trim()}`, { place: { file: args[0] } });
    }
  }
}

export interface XattrOp {
  path: string;
  name: string;
  value: Buffer;
}

/** Escape a path as getfattr does (octal for anything unprintable, `\` and `=`), for `setfattr --restore`. */
function quotePath(path: string): string {
  const b = Buffer.from(path, 'utf8');
  let s = '';
  for (const c of b) {
    if (c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x3d) s += '\\' + c.toString(8).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Set extended attributes without following symlinks (`setfattr -h`). Returns the attributes that
 * could not be set (e.g. unsupported namespaces), which containerd also ignores; the caller logs them.
 */
export async function setXattrBatch(ops: XattrOp[], signal?: AbortSignal): Promise<string> {
  if (ops.length === 0) return '';
  let dump = '';
  let last = '';
  for (const o of ops) {
    if (o.path !== last) {
      dump += `${dump ? '\n' : ''}# file: ${quotePath(o.path)}\n`;
      last = o.path;
    }
    dump += `${quotePath(o.name)}=${o.value.length ? '0x' + o.value.toString('hex') : '""'}\n`;
  }
  const { code, stderr } = await run('setfattr', ['-h', '--restore=-'], dump, signal);
  return code === 0 ? '' : stderr.trim() || `setfattr exited ${code}`;
}
