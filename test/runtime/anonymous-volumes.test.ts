/**
 * Image `Volumes` become anonymous volumes (issue 11): filled from the image, writable on a
 * read-only rootfs, kept across a restart, new after a recreate; a mount of the same path wins; a
 * path through a symlink is never copied from where the link points. Real runc and overlay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readLogTail } from '../../src/runtime/logs.ts';
import type { CreateRequest, Runtime } from '../../src/runtime/runtime.ts';
import { cleanup, makeBusyboxRootfs, request, runtimeFixture, until } from './helpers.ts';

describe('image Volumes as anonymous volumes', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  let n = 0;
  // A fresh writable layer over the image for each container.
  const overlay = async (lower: string) => {
    const d = path.join(root, `layer-${n++}`);
    await mkdir(path.join(d, 'upper'), { recursive: true });
    await mkdir(path.join(d, 'work'), { recursive: true });
    return {
      upper: path.join(d, 'upper'),
      mounts: [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${path.join(d, 'upper')}`, `workdir=${path.join(d, 'work')}`] }],
    };
  };
  const withVolumes = (req: CreateRequest, volumes: string[]): CreateRequest => ({
    ...req,
    imageConfig: { config: { Env: ['PATH=/bin'], Volumes: Object.fromEntries(volumes.map((v) => [v, {}])) } },
  });
  const log = async (name: string) => (await readLogTail(rt.containerDir(name))).toString();
  const exited = (name: string) => until(async () => (await rt.status(name)).state === 'exited', 10_000, `${name} to exit`);

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('anon-volumes'));
    await writeFile(path.join(rootfs, 'data', 'seed'), 'from the image\n');
  });
  afterAll(async () => cleanup(rt, root));

  it('starts with the image content, is writable on a read-only rootfs, outlives a restart and not a recreate', async () => {
    const script = 'cat /data/seed; echo run >> /data/runs && wc -l < /data/runs; touch /elsewhere 2>/dev/null || echo rootfs-read-only';
    const make = async () => {
      const { upper, mounts } = await overlay(rootfs);
      await rt.create(withVolumes(request('vol', mounts as any, { args: ['/bin/sh', '-c', script], readOnlyRootfs: true }), ['/data']));
      return upper;
    };
    const upper = await make();
    await rt.start('vol');
    await exited('vol');
    expect(await log('vol')).toBe('from the image\n1\nrootfs-read-only\n');
    // Not in the writable layer, nor in the image.
    expect(existsSync(path.join(upper, 'data', 'runs'))).toBe(false);
    expect(existsSync(path.join(rootfs, 'data', 'runs'))).toBe(false);

    await rt.start('vol', { restart: true });
    await exited('vol');
    expect((await log('vol')).split('\n')).toContain('2');

    await rt.delete('vol');
    await make();
    await rt.start('vol');
    await exited('vol');
    expect(await log('vol')).toBe('from the image\n1\nrootfs-read-only\n');
  });

  it('a mount at the same path wins (no anonymous volume)', async () => {
    const { mounts } = await overlay(rootfs);
    await rt.create(
      withVolumes(
        request('covered', mounts as any, {
          args: ['/bin/sh', '-c', 'ls /data | wc -l'],
          mounts: [{ type: 'tmpfs', target: '/data' }],
        }),
        ['/data'],
      ),
    );
    await rt.start('covered');
    await exited('covered');
    expect((await log('covered')).trim()).toBe('0');
    expect(existsSync(path.join(rt.containerDir('covered'), 'volumes'))).toBe(false);
  });

  it('a volume path that is a symlink in the image starts empty: nothing is copied from where it points', async () => {
    const image = await makeBusyboxRootfs(path.join(root, 'image-link'));
    await rm(path.join(image, 'data'), { recursive: true });
    await symlink('/etc', path.join(image, 'data')); // on the host, /etc holds far more than the image's passwd and group
    const { mounts } = await overlay(image);
    await rt.create(withVolumes(request('linked', mounts as any, { args: ['/bin/true'] }), ['/data']));
    const dirs = await readdir(path.join(rt.containerDir('linked'), 'volumes'));
    expect(dirs).toHaveLength(1);
    expect(await readdir(path.join(rt.containerDir('linked'), 'volumes', dirs[0]!))).toEqual([]);
    expect(await readFile('/etc/hostname', 'utf8')).toBeTruthy(); // the host file the copy would have taken
  });
});
