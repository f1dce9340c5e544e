/**
 * `berth secret recipient`: the device's age recipient (`age1…`), the public half of the key its
 * `Secret` documents are encrypted to; the key (`[secrets] identity`, default `<root>/age.key`) is
 * made, owner-only, if there is none. Encrypt a value for this device with the age tool:
 * `printf %s "$value" | age -r "$(berth secret recipient)" -a`.
 */
import type { Command } from 'commander';
import { deviceRecipient } from '../secrets/identity.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program: Command, run) => {
  const secret = program.command('secret').description('the device key that Secret documents are encrypted to');
  secret
    .command('recipient')
    .description("print the device's age recipient (age1…), creating the device key if there is none")
    .action(
      run(async (ctx) => {
        const { recipient, created } = await deviceRecipient(ctx.config.secrets.identity);
        if (created)
          process.stderr.write(`created the device key ${ctx.config.secrets.identity} (keep it: secrets encrypted to it cannot be read without it)\n`);
        ctx.out.write(`${recipient}\n`);
      }),
    );
};
