/**
 * `--device-labels site=berlin,model=rpi4` and `--device-name`: which fleet device a check stands
 * for (src/manifest/fleet.ts), and the listing of what that device would run and from which files.
 */
import { hostname } from 'node:os';
import type { Config } from '../config/config.ts';
import { invalidArgument } from '../errors.ts';
import type { DeviceIdentity } from '../manifest/fleet.ts';
import { checkManifests } from '../manifest/load.ts';

/** The device the flags describe; without flags the configured `[device]`, if any. */
export function deviceFromFlags(configured: Config['device'], flags: { deviceLabels?: string; deviceName?: string }): DeviceIdentity | undefined {
  if (flags.deviceLabels === undefined && flags.deviceName === undefined) return configured;
  const labels: Record<string, string> = {};
  for (const item of (flags.deviceLabels ?? '').split(',').filter((x) => x.trim() !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw invalidArgument(`--device-labels: "${item}" is not key=value`);
    labels[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return { name: flags.deviceName ?? configured?.name ?? hostname(), labels };
}

export function describeSelection(device: DeviceIdentity, origins: Map<string, string[]>): string {
  const labels =
    Object.entries(device.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || 'no labels';
  const lines = [`device ${device.name} (${labels}) runs:`];
  for (const [object, files] of [...origins].sort(([a], [b]) => a.localeCompare(b))) lines.push(`  ${object}  from ${files.join(' + ')}`);
  return `${lines.join('\n')}\n`;
}

/** `berth plan --explain`: which files made each object, for the configured device. */
export async function explainOrigins(path: string, device: DeviceIdentity | undefined, signal: AbortSignal): Promise<string> {
  if (!device) return '\nno [device] in the config: each object is one document, read as written\n';
  const result = await checkManifests(path, { signal, revision: false, allowEmpty: true, device });
  return result.origins ? `\n${describeSelection(device, result.origins)}` : '';
}
