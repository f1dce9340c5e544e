/**
 * The composition root: parses global flags, registers the verb the command line names (every verb
 * for help), maps errors to exit codes. Verbs live in `src/cli/<verb>.ts` and export
 * `register(program, run)`.
 */
import { Command, CommanderError } from 'commander';
import { BerthError } from '../errors.ts';
import { buildContext, ExitCode, type CliContext } from './context.ts';
import { verbsFor } from './verbs.ts';

/**
 * The global flags that take a value, before the verb. Commander's options are made from this list,
 * and so is the pre-parse that finds the verb (globalArgs); bin/berth keeps a copy in shell, which
 * test/cli/verbs.test.ts holds to this one.
 */
export const GLOBAL_OPTIONS: { flags: string; description: string; default?: string }[] = [
  { flags: '--root <dir>', description: 'state directory (default /var/lib/berth, or root in the config)' },
  { flags: '--config <file>', description: 'TOML config file', default: '/etc/berth/config.toml' },
  { flags: '--log-level <level>', description: 'trace|debug|info|warn|error|silent' },
  { flags: '--snapshotter <name>', description: 'overlayfs|native|auto' },
];
export const GLOBAL_VALUE_FLAGS = GLOBAL_OPTIONS.map((o) => o.flags.split(' ')[0]!);

/** Wraps a verb's action: builds the context, runs it, turns errors into a message and exit code. */
export type RunVerb = <A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<void>) => (...args: A) => Promise<void>;

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new BerthError('Aborted', 'interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let exitCode = 0;
  const program = new Command('berth').description('declarative container reconciler for edge devices');
  for (const o of GLOBAL_OPTIONS) program.option(o.flags, o.description, o.default);
  program.option('-V, --version', 'print the version, git commit, Node version and the OCI runtime found').exitOverride().showHelpAfterError();

  const run: RunVerb =
    (fn) =>
    async (...args) => {
      const cmd = args[args.length - 1] as Command;
      const ctx = await buildContext(cmd, controller.signal);
      await fn(ctx, ...args);
    };

  try {
    const { verb, configPath, version } = globalArgs(argv);
    if (version) {
      const { versionText } = await import('./version.ts');
      process.stdout.write(await versionText(configPath));
      return 0;
    }
    for (const { register } of await Promise.all(verbsFor(verb).map((v) => v.load()))) register(program, run);
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    exitCode = reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

/**
 * What the global flags before the verb say, read before commander parses them: the verb (the first
 * word that is not a flag or a flag's value; undefined if none), whether `--version` was asked, and
 * the config path to read the runtime from for it.
 */
function globalArgs(argv: string[]): { verb?: string; version: boolean; configPath: string } {
  let configPath = '/etc/berth/config.toml';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--version' || a === '-V') return { version: true, configPath };
    if (!a.startsWith('-')) return { verb: a, version: false, configPath }; // its own flags follow
    if (a === '--config') configPath = argv[i + 1] ?? configPath;
    else if (a.startsWith('--config=')) configPath = a.slice('--config='.length);
    if (GLOBAL_VALUE_FLAGS.includes(a)) i++; // the flag's value
  }
  return { version: false, configPath };
}

function reportError(err: unknown): number {
  if (err instanceof ExitCode) return err.code;
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? 0 : 1; // commander already printed the message
  }
  if (err instanceof BerthError) {
    process.stderr.write(`berth: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`berth: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}

if (import.meta.main) {
  // `berth status | head` closes the pipe early: that is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  process.exitCode = await main(process.argv.slice(2));
}
