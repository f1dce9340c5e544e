/**
 * Error kinds shared by every layer. Callers branch on `kind` (or the stable `code`), never on
 * message text. Messages say what and where: the path, the ref, the digest expected and found,
 * the manifest file:line:col.
 */
export const ErrorKinds = [
  'NotFound',
  'AlreadyExists',
  'InvalidArgument',
  'FailedPrecondition',
  'Unavailable',
  'Corrupt',
  'Unimplemented',
  'ResourceExhausted',
  'Aborted',
  'Internal',
] as const;
export type ErrorKind = (typeof ErrorKinds)[number];

/** Where an error happened: a file path, optionally with a 1-based line and column. */
export interface Place {
  file?: string;
  line?: number;
  col?: number;
}

export class BerthError extends Error {
  readonly kind: ErrorKind;
  readonly place?: Place;

  constructor(kind: ErrorKind, message: string, options: { cause?: unknown; place?: Place } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.kind = kind;
    this.place = options.place;
  }

  /** Stable machine-readable code, e.g. `berth.NotFound`. */
  get code(): string {
    return `berth.${this.kind}`;
  }
}

export function isKind(err: unknown, kind: ErrorKind): err is BerthError {
  return err instanceof BerthError && err.kind === kind;
}

/** `file:line:col` (or as much of it as is known), for messages. */
export function formatPlace(place: Place | undefined): string {
  if (!place?.file) return '';
  let s = place.file;
  if (place.line !== undefined) s += `:${place.line}`;
  if (place.line !== undefined && place.col !== undefined) s += `:${place.col}`;
  return s;
}

export const notFound = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('NotFound', msg, o);
export const alreadyExists = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('AlreadyExists', msg, o);
export const invalidArgument = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('InvalidArgument', msg, o);
export const failedPrecondition = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('FailedPrecondition', msg, o);
export const unavailable = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('Unavailable', msg, o);
export const corrupt = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('Corrupt', msg, o);
export const unimplemented = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('Unimplemented', msg, o);
export const resourceExhausted = (msg: string, o?: { cause?: unknown; place?: Place }) => new BerthError('ResourceExhausted', msg, o);
