/** The logger: pino, JSON when stderr is not a TTY, readable (pino-pretty) when it is. Never a singleton. */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? 'info';
  const dest = opts.destination ?? process.stderr;
  const usePretty = opts.pretty ?? Boolean((dest as NodeJS.WriteStream).isTTY);
  // Credentials must never reach a log line, whatever a caller passes along.
  const redact = { paths: ['password', '*.password', 'authorization', '*.authorization', 'headers.authorization', 'token', '*.token'], censor: '[redacted]' };
  if (usePretty) {
    // Loaded only for a terminal: a daemon logging JSON never pays for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino({ level, redact }, pretty({ destination: dest as any, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' }));
  }
  return pino({ level, redact, base: undefined }, dest as any);
}

/** A logger that discards everything, for tests and library callers that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
