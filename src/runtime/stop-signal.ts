/**
 * The signal that stops a container's task: the manifest's `stopSignal`; when the manifest names
 * none, the image's `StopSignal` (Dockerfile STOPSIGNAL), as Docker and Podman do; else SIGTERM.
 */
import type { ContainerSpec } from '../manifest/types.ts';

/** `QUIT` → `SIGQUIT`; a number (`3`) stays a number, which runc and crun also accept. */
function normalise(sig: string): string {
  const s = sig.trim().toUpperCase();
  return /^\d+$/.test(s) || s.startsWith('SIG') ? s : `SIG${s}`;
}

export function effectiveStopSignal(spec: Pick<ContainerSpec, 'stopSignal' | 'stopSignalDefaulted'>, image?: { config?: { StopSignal?: string } }): string {
  const fromImage = image?.config?.StopSignal;
  return spec.stopSignalDefaulted && fromImage?.trim() ? normalise(fromImage) : spec.stopSignal;
}
