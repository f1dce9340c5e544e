/**
 * `berth validate -f DIR`: checks a manifests directory (or file) without touching the device.
 * Prints every problem as `file:line:col: message` (the format editors and CI annotate from) and
 * exits 1 if there is any; otherwise prints a one-line summary and exits 0.
 */
import type { Command } from 'commander';
import { checkManifests } from '../manifest/load.ts';
import { formatProblem } from '../manifest/problems.ts';
import { containerWarnings } from '../manifest/warnings.ts';
import { ExitCode } from './context.ts';
import type { RegisterVerb } from './verbs.ts';
import { deviceFromFlags, describeSelection } from './device-flags.ts';

export const register: RegisterVerb = (program: Command, run) => {
  program
    .command('validate')
    .description('check manifests against the schema and each other; print every problem as file:line:col')
    .requiredOption('-f, --file <path>', 'manifests directory or file')
    .option('--allow-empty', 'accept a set with no documents (it would remove every container)')
    .option('--device-labels <k=v,...>', 'check as the fleet device with these labels would see it (selectors, overlays, ${device.…})')
    .option('--device-name <name>', 'the device name for devices/<name>/ and ${device.name} (default: [device] name, else the hostname)')
    .action(
      run(async (ctx, opts: { file: string; allowEmpty?: boolean; deviceLabels?: string; deviceName?: string }) => {
        const device = deviceFromFlags(ctx.config.device, opts);
        const result = await checkManifests(opts.file, { signal: ctx.signal, revision: false, allowEmpty: opts.allowEmpty, device });
        if (!result.state) {
          for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
          const n = result.problems.length;
          process.stderr.write(`${n} problem${n === 1 ? '' : 's'} in ${opts.file}\n`);
          throw new ExitCode(1);
        }
        const s = result.state;
        for (const w of containerWarnings(s.containers)) process.stderr.write(`${formatProblem(w)}\n`);
        const count = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
        ctx.out.write(
          `${opts.file}: valid (${count(result.files.length, 'file')}: ${count(s.containers.length, 'container')}, ${count(s.images.length, 'image')}, ${count(s.volumes.length, 'volume')})\n`,
        );
        if (device && result.origins) ctx.out.write(describeSelection(device, result.origins));
      }),
    );
};
