/**
 * The lines of a text stream, as they arrive: what the layer-apply helper reports on its stdout.
 * node:readline would do, but it is one more builtin module resident in a daemon that pulled once.
 */
import type { Readable } from 'node:stream';

/** Calls `online` with each line of `stream` (without its newline), the last one even if unterminated. */
export function onLines(stream: Readable, online: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) online(line);
  });
  stream.on('end', () => {
    if (partial) online(partial);
  });
}
