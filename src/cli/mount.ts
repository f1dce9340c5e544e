/**
 * `berth mount REF TARGET`: a read-only view of an unpacked image's rootfs at TARGET (nosuid, nodev);
 * `berth unmount TARGET` undoes it. The view is a snapshot keyed `berth-mount:<absolute target>`,
 * so unmount finds it again.
 *
 * A lease of the same name, without expiry, holds the view (and through it the image's layers)
 * until unmount: nothing else refers to the view, so `berth gc` would otherwise remove the
 * directory under the mount. The lease is taken before the view is made and dropped after it is
 * removed, so a crash in between leaves at most a lease that the next unmount of TARGET clears.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CliContext } from './context.ts';
import type { RegisterVerb } from './verbs.ts';
import { failedPrecondition, isKind, notFound } from '../errors.ts';
import { normalizeReference } from '../oci/reference.ts';
import { mountAll, unmount } from '../snapshots/mount.ts';
import { openSnapshotter, snapshotterRoot, type SnapshotterName } from '../snapshots/select.ts';

export const mountKey = (target: string) => `berth-mount:${resolve(target)}`;

/** Make the view snapshot `key` of `parent` and mount it at `target`; nothing is left if that fails. */
async function mountView(ctx: CliContext, snapshotter: SnapshotterName, key: string, parent: string, target: string): Promise<void> {
  const sn = await openSnapshotter(ctx.config.root, snapshotter, { signal: ctx.signal, recover: false });
  try {
    const mounts = await sn.view(key, parent, { signal: ctx.signal });
    try {
      if (!existsSync(target)) mkdirSync(target, { recursive: true });
      // A view for looking at, from the host: the image's set-uid binaries and device nodes must not work there.
      await mountAll(
        mounts.map((m) => ({ ...m, options: [...m.options, 'nosuid', 'nodev'] })),
        target,
        ctx.signal,
      );
    } catch (err) {
      await sn.remove(key).catch(() => {});
      throw err;
    }
  } finally {
    await sn.close();
  }
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('mount')
    .description("mount an unpacked image's rootfs read-only at TARGET")
    .argument('<ref>', 'image reference')
    .argument('<target>', 'directory to mount on (created if missing)')
    .action(
      run(async (ctx, ref: string, target: string) => {
        const { openImageStores } = await import('./stores.ts');
        const { metadata, close } = await openImageStores(ctx, { cleanStaleIngests: false });
        try {
          const name = normalizeReference(ref);
          const img = metadata.getImage(name);
          if (!img) throw notFound(`image ${name} not found (berth pull ${ref})`);
          const chain = img.chainIds;
          if (!chain?.length || !img.snapshotter) throw failedPrecondition(`image ${name} is not unpacked (pull it without --no-unpack)`);
          const key = mountKey(target);
          const taken = () => failedPrecondition(`${resolve(target)} already has a berth mount (berth unmount ${target})`);
          try {
            metadata.transaction(() => {
              metadata.createLease(key, { labels: { 'berth.dev/mount': resolve(target), 'berth.dev/image': name } });
              metadata.addLeaseResource(key, { type: 'snapshot', key: `${img.snapshotter}/${key}` });
            });
          } catch (err) {
            throw isKind(err, 'AlreadyExists') ? taken() : err;
          }
          await mountView(ctx, img.snapshotter as SnapshotterName, key, chain.at(-1)!, target).catch((err) => {
            metadata.deleteLease(key);
            throw isKind(err, 'AlreadyExists') ? taken() : err;
          });
          ctx.log.info({ image: name, target: resolve(target), snapshotter: img.snapshotter }, 'mounted');
        } finally {
          close();
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
        // The view is gone: its lease goes too (also one a crash left before the view was made).
        const { openImageStores } = await import('./stores.ts');
        const { metadata, close } = await openImageStores(ctx, { cleanStaleIngests: false });
        try {
          if (metadata.getLease(key)) {
            metadata.deleteLease(key);
            removed = true;
          }
        } finally {
          close();
        }
        if (!removed) ctx.log.warn({ target: resolve(target) }, 'no berth mount view was recorded for this target');
      }),
    );
};
