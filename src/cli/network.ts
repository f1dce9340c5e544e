/** `berth network ls [--json]`: the networks containers are on, with subnet, bridge and containers. */
import { networksInUse } from '../network/networks.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program, run) => {
  const network = program.command('network').description('networks (netavark bridges) and their containers');
  network
    .command('ls')
    .description('list the networks containers are on: name, subnet, bridge, containers')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, flags: { json?: boolean }) => {
        const nets = await networksInUse(ctx.config.root);
        if (flags.json) {
          ctx.out.write(`${JSON.stringify(nets, null, 2)}\n`);
          return;
        }
        const rows = [['NAME', 'SUBNET', 'CONTAINERS', 'BRIDGE', 'MEMBERS'], ...nets.map((n) => [n.name, n.subnet, String(n.containers.length), n.bridge, n.containers.join(',')])];
        const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
        for (const r of rows) ctx.out.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`);
      }),
    );
};
