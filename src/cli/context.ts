/**
 * What every verb needs: the config (file + global flags) and a logger. Built once per command
 * invocation by the composition root; verbs get it passed in, nothing is global.
 */
import type { Command } from 'commander';
import { loadConfig, DEFAULT_CONFIG_PATH, type Config } from '../config/config.ts';
import { looseSecretFiles } from '../config/secret-files.ts';
import { createLogger, type Logger } from '../log.ts';
import { sourceManifestsPath } from '../source/revisions.ts';

export interface GlobalOptions {
  root?: string;
  config?: string;
  logLevel?: string;
  snapshotter?: string;
}

export interface CliContext {
  config: Config;
  log: Logger;
  /** Aborted on SIGINT/SIGTERM so every I/O path can stop cleanly. */
  signal: AbortSignal;
  out: NodeJS.WriteStream;
}

export async function buildContext(cmd: Command, signal: AbortSignal): Promise<CliContext> {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  const overrides: Record<string, unknown> = {};
  if (g.root) overrides.root = g.root;
  if (g.snapshotter) overrides.snapshotter = g.snapshotter;
  if (g.logLevel) overrides.log_level = g.logLevel;
  const configPath = g.config ?? DEFAULT_CONFIG_PATH;
  const config = await loadConfig(configPath, overrides);
  const log = createLogger({ level: config.logLevel });
  for (const f of await looseSecretFiles(config, configPath)) {
    log.warn({ file: f.path, mode: f.mode.toString(8) }, `${f.path} holds ${f.holds} and is not owner-only (mode ${f.mode.toString(8)}): chmod 600 it`);
  }
  return { config, log, signal, out: process.stdout };
}

/** Exit code carried by an error thrown from a verb (e.g. `plan` exits 2 when there are changes). */
export class ExitCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

/** `-f` if given, else the git source's current revision (`[source.git]`), else the config's `reconcile.manifests`. */
export function manifestsPath(ctx: CliContext, opts: { file?: string }): string {
  const git = ctx.config.source.git;
  return opts.file ?? (git ? sourceManifestsPath(ctx.config.root, git.path) : ctx.config.reconcile.manifests);
}
