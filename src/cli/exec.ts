/**
 * `berth exec NAME [-it] [-e K=V] [-w DIR] -- CMD...`: run a command inside a running container, with
 * this process's stdin, stdout and stderr; berth exits with the command's exit code. `-t` gives it a
 * terminal; stdin is always passed, so `-i` is accepted (as in docker exec) and changes nothing.
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
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-t, --tty', 'give the command a terminal (for shells and editors)')
    .option('-i, --interactive', 'keep stdin open (always the case; accepted as in docker exec)')
    .action(
      run(async (ctx, name: string, command: string[], flags: { env?: string[]; workdir?: string; tty?: boolean }) => {
        // exec starts no task, so a reading runtime (no shim build) is enough.
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        const r = await rt.exec(name, {
          args: command,
          env: parseEnv(flags.env ?? []),
          cwd: flags.workdir,
          stdio: 'inherit',
          tty: flags.tty,
          signal: ctx.signal,
        });
        if (r.exitCode !== 0) throw new ExitCode(r.exitCode ?? 1);
      }),
    );
};
