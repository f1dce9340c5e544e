/** The device's name, as webhooks and metrics report it: `[device] name`, else the hostname. */
import { hostname } from 'node:os';
import type { Config } from './config.ts';

export function deviceName(config: Pick<Config, 'device'>): string {
  return config.device?.name ?? hostname();
}
