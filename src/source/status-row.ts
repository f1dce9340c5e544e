/**
 * The git source in `berth status`: an object status row of kind `Source` named by the URL. The
 * first line of its message is the summary the table shows; the lines after it carry the details
 * (`--json` shows them all). A device may fetch every minute for years, so the row is written only
 * when something in it changes, and a fetch that changed nothing refreshes `last fetch` at most
 * once an hour (SD cards wear). An event is recorded when a commit is applied or refused.
 */
import type { Metadata } from '../metadata/metadata.ts';
import type { SourceStatus } from './git.ts';

export const SOURCE_KIND = 'Source';
const FETCH_TIME_REFRESH_MS = 60 * 60_000;

export function sourceMessage(s: SourceStatus): string {
  const lines = [
    s.message,
    `url: ${s.url}`,
    `ref: ${s.ref}`,
    `fetched: ${s.fetched ?? '-'}`,
    `applied: ${s.applied ?? '-'}${s.signer ? ` (signed by ${s.signer})` : ''}`,
    `last fetch: ${s.lastFetchAt?.toISOString() ?? '-'}`,
    `last error: ${s.lastError ?? '-'}`,
  ];
  return lines.join('\n');
}

const withoutFetchTime = (m: string) => m.replace(/^last fetch: .*$/m, '');

/** Record `s` unless the stored row already says the same. Returns true when it wrote. */
export function recordSourceStatus(metadata: Metadata, s: SourceStatus, now = Date.now()): boolean {
  const message = sourceMessage(s);
  const old = metadata.getStatus(SOURCE_KIND, s.url);
  const same = old && old.state === s.state && old.reason === s.reason && old.lastAppliedRevision === (s.applied ?? undefined);
  if (same && old.message === message) return false;
  if (same && withoutFetchTime(old.message) === withoutFetchTime(message) && now - old.updatedAt.getTime() < FETCH_TIME_REFRESH_MS) return false;
  metadata.setStatus({ kind: SOURCE_KIND, name: s.url, state: s.state, reason: s.reason, message, lastAppliedRevision: s.applied ?? null });
  const object = { kind: SOURCE_KIND, name: s.url };
  if (s.applied && old?.lastAppliedRevision !== s.applied && (s.reason === 'Applied' || s.reason === 'Unverified')) {
    metadata.addEvent({ object, type: 'Normal', reason: 'RevisionApplied', message: `${s.ref}: ${s.message}` });
  } else if (s.state !== 'Ready' && s.reason !== 'NotFetchedYet' && (old?.reason !== s.reason || old.message.split('\n')[0] !== s.message)) {
    metadata.addEvent({ object, type: 'Warning', reason: s.reason, message: `${s.ref}: ${s.message}` });
  }
  return true;
}
