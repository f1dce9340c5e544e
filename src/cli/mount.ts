/**
 * `berth mount REF TARGET`: a read-only view of an unpacked image's rootfs at TARGET (nosuid, nodev);
 * `berth unmount TARGET` undoes it. The view is a snapshot keyed `berth-mount:<absolute target>`,
 * so unmount finds it again and GC sees it while it exists.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RegisterVerb } from './verbs.ts';
import { failedPrecondition, isKind, notFound } from '../errors.ts';
import { normalizeReference } from '../oci/reference.ts';
import { mountAll, unmount } from '../snapshots/mount.ts';
import { openSnapshotter, snapshotterRoot, type SnapshotterName } from '../snapshots/select.ts';

export const mountKey = (target: string) => `berth-mount:${resolve(target)}`;

export const register: RegisterVerb = (program, run) => {
  program
    .command('mount')
    .description("mount an unpacked image's rootfs read-only at TARGET")
    .argument('<ref>', 'image reference')
    .argument('<target>', 'directory to mount on (created if missing)')
    .action(
      run(async (ctx, ref: string, target: string) => {
        const { openImageStores } = await import('./stores.ts');
        const stores = await openImageStores(ctx, { cleanStaleIngests: false });
        let name: string;
        let chain: string[] | undefined;
        let snName: string | undefined;
        try {
          name = normalizeReference(ref);
          const img = stores.metadata.getImage(name);
          if (!img) throw notFound(`image ${name} not found (berth pull ${ref})`);
          chain = img.chainIds;
          snName = img.snapshotter;
        } finally {
          stores.close();
        }
        if (!chain?.length || !snName) throw failedPrecondition(`image ${name} is not unpacked (pull it without --no-unpack)`);
        const sn = await openSnapshotter(ctx.config.root, snName as SnapshotterName, { signal: ctx.signal, recover: false });
        try {
          const key = mountKey(target);
          const mounts = await sn.view(key, chain.at(-1), { signal: ctx.signal }).catch((err) => {
            if (isKind(err, 'AlreadyExists')) throw failedPrecondition(`${resolve(target)} already has a berth mount (berth unmount ${target})`);
            throw err;
          });
          try {
            if (!existsSync(target)) mkdirSync(target, { recursive: true });
            // A view for looking at, from the host: the image's set-uid binaries and device nodes must not work there.
            await mountAll(mounts.map((m) => ({ ...m, options: [...m.options, 'nosuid', 'nodev'] })), target, ctx.signal);
          } catch (err) {
            await sn.remove(key).catch(() => {});
            throw err;
          }
          ctx.log.info({ image: name, target: resolve(target), snapshotter: sn.name }, 'mounted');
        } finally {
          await sn.close();
        }
      }),
    );

  program
    .command('unmount')
    .alias('umount')
    .description('unmount a TARGET mounted by berth mount')
    .argument('<target>', 'mount point')
    .action(
      run(async (ctx, target: string) => {
        await unmount(target, { signal: ctx.signal });
        const key = mountKey(target);
        let removed = false;
        for (const n of ['overlayfs', 'native'] as const) {
          if (!existsSync(snapshotterRoot(ctx.config.root, n))) continue;
          const sn = await openSnapshotter(ctx.config.root, n, { recover: false });
          try {
            await sn.remove(key);
            removed = true;
          } catch (err) {
            if (!isKind(err, 'NotFound')) throw err;
          } finally {
            await sn.close();
          }
        }
        if (!removed) ctx.log.warn({ target: resolve(target) }, 'no berth mount view was recorded for this target');
      }),
    );
};
