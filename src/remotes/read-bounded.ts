/** Read a whole response body into memory, but never more than a limit: a server decides how much it sends. */
import type { Dispatcher } from 'undici';

/** The body of `res`, or `tooLarge()` thrown (and the body destroyed) once it passes `limit` bytes. */
export async function readBounded(res: Dispatcher.ResponseData, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw tooLarge();
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
