/**
 * `berth content ls [--json]`: committed blobs (digest, size, date) and ingests in progress.
 * `berth content verify`: re-hash every blob; exit 1 if any does not match its name.
 */
import { ExitCode } from './context.ts';
import type { RegisterVerb } from './verbs.ts';
import { formatBytes } from '../format-bytes.ts';

export const register: RegisterVerb = (program, run) => {
  const content = program.command('content').description('inspect the content store');
  content
    .command('ls')
    .description('list committed blobs and active ingests')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, flags: { json?: boolean }) => {
        const { openImageStores } = await import('./stores.ts');
        const { store, close } = await openImageStores(ctx, { cleanStaleIngests: false });
        try {
          const blobs = [];
          for await (const i of store.walk(ctx.signal)) blobs.push(i);
          const ingests = await store.listIngests();
          if (flags.json) {
            ctx.out.write(
              `${JSON.stringify({ blobs: blobs.map((b) => ({ digest: b.digest, size: b.size, createdAt: b.createdAt.toISOString() })), ingests }, null, 2)}\n`,
            );
            return;
          }
          ctx.out.write('DIGEST                                                                   SIZE       CREATED\n');
          for (const b of blobs) ctx.out.write(`${b.digest}  ${formatBytes(b.size).padEnd(9)}  ${b.createdAt.toISOString()}\n`);
          for (const i of ingests)
            ctx.out.write(`ingest ${i.ref}: ${formatBytes(i.offset)}${i.total ? ` of ${formatBytes(i.total)}` : ''}, updated ${i.updatedAt.toISOString()}\n`);
        } finally {
          close();
        }
      }),
    );
  content
    .command('verify')
    .description('re-hash every blob; exit 1 on any mismatch')
    .action(
      run(async (ctx) => {
        const [{ openImageStores }, { verifyContent }] = await Promise.all([import('./stores.ts'), import('../content/verify.ts')]);
        const { store, close } = await openImageStores(ctx, { cleanStaleIngests: false });
        let bad = 0;
        let n = 0;
        try {
          for await (const r of verifyContent(store, ctx.signal)) {
            n++;
            if (!r.ok) {
              bad++;
              ctx.out.write(`CORRUPT ${r.digest}: ${r.found ? `content hashes to ${r.found}` : r.error} (${store.blobPath(r.digest)})\n`);
            }
          }
        } finally {
          close();
        }
        ctx.out.write(`${n} blobs checked, ${bad} corrupt\n`);
        if (bad > 0) throw new ExitCode(1);
      }),
    );
};
