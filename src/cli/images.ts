/** `berth images [--json]`: the images recorded, with digest, platform and size. */
import type { RegisterVerb } from './verbs.ts';
import { formatBytes } from '../format-bytes.ts';
import { shortDigest } from './image-format.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('images')
    .description('list images: name, digest, platform, size')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, flags: { json?: boolean }) => {
        const { openImageStores } = await import('./stores.ts');
        const stores = await openImageStores(ctx, { cleanStaleIngests: false });
        try {
          const images = stores.metadata.listImages().sort((a, b) => a.name.localeCompare(b.name));
          if (flags.json) {
            ctx.out.write(
              `${JSON.stringify(
                images.map((i) => ({
                  name: i.name,
                  digest: i.target.digest,
                  mediaType: i.target.mediaType,
                  manifestDigest: i.manifestDigest,
                  configDigest: i.configDigest,
                  platform: i.platform,
                  size: i.size,
                  unpacked: i.chainIds !== undefined,
                  snapshotter: i.snapshotter,
                  createdAt: i.createdAt.toISOString(),
                  updatedAt: i.updatedAt.toISOString(),
                })),
                null,
                2,
              )}\n`,
            );
            return;
          }
          const rows = [['NAME', 'DIGEST', 'PLATFORM', 'SIZE'], ...images.map((i) => [i.name, shortDigest(i.target.digest), i.platform, formatBytes(i.size)])];
          const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
          for (const r of rows) ctx.out.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`);
        } finally {
          stores.close();
        }
      }),
    );
};
