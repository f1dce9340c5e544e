/**
 * `berth network ls [--json]`: the networks the applied manifests declare (with or without
 * containers) and those containers are on, with subnet, bridge, containers and published ports.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DesiredState } from '../manifest/types.ts';
import { Metadata } from '../metadata/metadata.ts';
import { listNetworks } from '../network/listing.ts';
import type { RegisterVerb } from './verbs.ts';

/** The networks of the applied generation; none before anything was applied (nothing is created here). */
function declaredNetworks(root: string): NonNullable<DesiredState['networks']> {
  const path = join(root, 'metadata.db');
  if (!existsSync(path)) return [];
  const metadata = Metadata.open(path);
  try {
    return (metadata.currentGeneration()?.desired as DesiredState | undefined)?.networks ?? [];
  } finally {
    metadata.close();
  }
}

export const register: RegisterVerb = (program, run) => {
  const network = program.command('network').description('networks (netavark bridges) and their containers');
  network
    .command('ls')
    .description('list the declared networks and those containers are on: name, subnet, containers, published ports, bridge')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, flags: { json?: boolean }) => {
        const nets = await listNetworks(ctx.config.root, declaredNetworks(ctx.config.root));
        if (flags.json) {
          ctx.out.write(`${JSON.stringify(nets, null, 2)}\n`);
          return;
        }
        const rows = [
          ['NAME', 'SUBNET', 'CONTAINERS', 'PORTS', 'BRIDGE', 'MEMBERS'],
          ...nets.map((n) => [
            `${n.name}${n.internal ? ' (internal)' : ''}`,
            n.subnet,
            String(n.containers.length),
            String(n.publishedPorts),
            n.bridge,
            n.containers.join(','),
          ]),
        ];
        const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
        for (const r of rows) ctx.out.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`);
      }),
    );
};
