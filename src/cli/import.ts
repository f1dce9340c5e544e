/** `berth import [--name REF] [--platform p] PATH`: OCI layout dir, OCI archive or docker-archive. */
import type { RegisterVerb } from './verbs.ts';
import { shortDigest } from './image-format.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('import')
    .description('import images from an OCI layout directory, an OCI archive or a docker-archive (docker save)')
    .argument('<path>', 'directory or tar file')
    .option('--name <ref>', 'name for the imported image (archives holding one image)')
    .option('--platform <os/arch[/variant]>', 'platform to record from a multi-platform index (default: the host)')
    .action(
      run(async (ctx, path: string, flags: { name?: string; platform?: string }) => {
        const [{ openImageStores }, { importImages }] = await Promise.all([import('./stores.ts'), import('../images/import.ts')]);
        const stores = await openImageStores(ctx);
        try {
          const result = await importImages({
            path,
            store: stores.store,
            metadata: stores.metadata,
            name: flags.name,
            platform: flags.platform ?? ctx.config.pull.platform,
            signal: ctx.signal,
          });
          for (const r of result.records)
            ctx.out.write(`${r.name} ${r.target.digest} (${result.format}, ${r.platform}, manifest ${shortDigest(r.manifestDigest)})\n`);
        } finally {
          stores.close();
        }
      }),
    );
};
