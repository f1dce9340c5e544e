/**
 * The import directory holds what someone dropped there, not what berth made: a dangling symlink
 * is skipped with a warning event (it must not stop start-up, which systemd would only repeat),
 * and an archive that names itself after a digest it does not hold is refused, while the good
 * archive next to them still goes in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DEMO_REF, E2eRoot, requireE2e } from '../helpers/e2e.ts';
import { buildImage, sha256, writeOciArchive } from '../helpers/images.ts';

let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('import-dir-hostile');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('hostile entries in the import directory', () => {
  it('skips a dangling symlink and refuses a digest-pinned name whose content differs', async () => {
    await symlink(join(e.dir, 'no-such-archive.tar'), join(e.root, 'import', 'gone.tar'));
    const pinned = `registry.example/app@${sha256('the image the manifests pin')}`;
    await writeOciArchive(join(e.root, 'import', 'liar.tar'), await buildImage({ layers: [{ files: { a: 'evil' } }] }), pinned);

    const r = await e.berth('apply', '--allow-empty', '-f', e.manifests);
    expect(r.code, r.stdout + r.stderr).toBe(0);

    const events = (await e.status()).events;
    expect(events.find((ev) => ev.reason === 'ImportSkipped')?.object.name).toBe(join(e.root, 'import', 'gone.tar'));
    const refused = events.find((ev) => ev.reason === 'ImportFailed');
    expect(refused?.object.name).toBe(join(e.root, 'import', 'liar.tar'));
    expect(refused?.message).toContain(pinned);

    const images = JSON.parse((await e.berth('images', '--json')).stdout) as Array<{ name: string }>;
    expect(images.map((i) => i.name)).toEqual([DEMO_REF]);
  });
});
