/**
 * The record of each container on a network: `<root>/networks/<container>.json`, written
 * atomically BEFORE anything is set up (so a crash mid-setup leaves the record recovery tears down
 * from) and removed only after teardown. The records together are the address allocator's state:
 * an address is taken exactly while a record names it.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import type { PortSpec } from '../manifest/types.ts';
import { ifExists, isMissing, writeFileAtomic } from '../durable-file.ts';
import type { NetavarkOptions } from './netavark.ts';
import { attachmentFile, networksDir } from './paths.ts';

export interface Attachment {
  container: string;
  /** `setting-up` until netavark's setup returned; a record still in it after a crash is torn down. */
  state: 'setting-up' | 'ready';
  /** Network name → the container's address there. */
  addresses: Record<string, string>;
  /** Network name → its aliases (beyond the container's name). */
  aliases: Record<string, string[]>;
  ports: PortSpec[];
  /** The name servers the container was given (aardvark-dns on its networks' gateways). */
  dns: string[];
  /** Exactly what netavark was given: teardown needs the same description. */
  netavark: NetavarkOptions;
}

export async function writeAttachment(root: string, a: Attachment): Promise<void> {
  await writeFileAtomic(attachmentFile(root, a.container), `${JSON.stringify(a, null, 1)}\n`, { mode: 0o600 });
}

export async function readAttachment(root: string, container: string): Promise<Attachment | undefined> {
  try {
    return JSON.parse(await readFile(attachmentFile(root, container), 'utf8')) as Attachment;
  } catch (err: any) {
    // A record torn by a power cut (written atomically, so only an fs that lost the rename) names nothing.
    if (isMissing(err) || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export async function deleteAttachment(root: string, container: string): Promise<void> {
  await rm(attachmentFile(root, container), { force: true });
}

/** Every record, by container name. */
export async function listAttachments(root: string): Promise<Attachment[]> {
  const names = (await ifExists(readdir(networksDir(root)))) ?? [];
  const out: Attachment[] = [];
  for (const n of names.filter((n) => n.endsWith('.json')).sort()) {
    const a = await readAttachment(root, n.slice(0, -'.json'.length));
    if (a) out.push(a);
  }
  return out;
}
