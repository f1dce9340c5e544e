/** Shared by `ps` and `inspect`: how a container's state reads to a person. */
import type { ContainerStatus } from '../runtime/runtime.ts';
import type { Mount } from '../snapshots/snapshotter.ts';

/**
 * `running`, `exited (OOM-killed)`, `exited (signal 9)`, `stopped`, … When a restart by policy is
 * due is the reconciler's to say: `berth status` shows its waiting step (`web: restart in 20s …`).
 */
export function describeState(s: ContainerStatus): string {
  let text: string = s.state;
  if (s.state === 'exited' || s.state === 'stopped') {
    const e = s.exit;
    if (e?.oomKilled) text += ' (OOM-killed)';
    else if (e?.lost) text += ' (status lost)';
    else if (e?.signal) text += ` (signal ${e.signal})`;
  }
  return text;
}

/** `5s`, `3m`, `2h`, `4d`: the largest unit only, like `docker ps`. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A mount as the mount(8) command line would show it: `overlay lowerdir=…,upperdir=…,workdir=…`. */
export function mountLine(m: Mount): string {
  return `${m.type} ${m.options.join(',')}${m.type === 'bind' ? ` ${m.source}` : ''}`;
}
