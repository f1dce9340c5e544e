/**
 * `berth exec NAME [-e K=V] [-w DIR] -- CMD...`: run a command inside a running container, with this
 * terminal's stdin, stdout and stderr; berth exits with the command's exit code. No tty (`-it`):
 * runc hands a tty's master side over a unix socket (SCM_RIGHTS), which Node cannot receive.
 */
import { invalidArgument } from '../errors.ts';
import { Runtime } from '../runtime/runtime.ts';
import { ExitCode } from './context.ts';
import type { RegisterVerb } from './verbs.ts';

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw invalidArgument(`--env: "${p}" is not KEY=VALUE`);
    env[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return env;
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('exec')
    .description("run a command in a running container (its namespaces, user and environment); exits with the command's code")
    .argument('<name>', 'container name')
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .action(
      run(async (ctx, name: string, command: string[], flags: { env: string[]; workdir?: string }) => {
        // exec starts no task, so a reading runtime (no shim build) is enough.
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        const r = await rt.exec(name, { args: command, env: parseEnv(flags.env), cwd: flags.workdir, stdio: 'inherit', signal: ctx.signal });
        if (r.exitCode !== 0) throw new ExitCode(r.exitCode ?? 1);
      }),
    );
};
