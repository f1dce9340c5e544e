import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { expect, it } from 'vitest';
import { onLines } from '../../src/diff/line-reader.ts';

async function linesOf(chunks: (string | Buffer)[]): Promise<string[]> {
  const stream = new PassThrough();
  const lines: string[] = [];
  onLines(stream, (l) => lines.push(l));
  for (const c of chunks) stream.write(c);
  stream.end();
  await once(stream, 'end');
  return lines;
}

it('joins a line split across chunks, and gives a last line without its newline', async () => {
  expect(await linesOf(['{"warn":"a"}\n{"ok":', '{"size":1}}\n', 'tail'])).toEqual(['{"warn":"a"}', '{"ok":{"size":1}}', 'tail']);
});

it('keeps a UTF-8 character whose bytes arrive in two chunks', async () => {
  const bytes = Buffer.from('é\n');
  expect(await linesOf([bytes.subarray(0, 1), bytes.subarray(1)])).toEqual(['é']);
});
