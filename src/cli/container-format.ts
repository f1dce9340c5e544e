/** Shared by `ps` and `inspect`: how a container's state reads to a person. */
import type { ContainerStatus } from '../runtime/runtime.ts';
import type { Mount } from '../snapshots/snapshotter.ts';

/** `running`, `exited (OOM-killed)`, `exited (code 3)`, `stopped`, … */
export function describeState(s: ContainerStatus): string {
  if (s.state === 'exited' || s.state === 'stopped') {
    const e = s.exit;
    if (!e) return s.state;
    if (e.oomKilled) return `${s.state} (OOM-killed)`;
    if (e.lost) return `${s.state} (status lost)`;
    if (e.signal) return `${s.state} (signal ${e.signal})`;
    return s.state;
  }
  if (s.state === 'created' && s.record.nextRestartAt) return 'waiting (restart back-off)';
  return s.state;
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
