/**
 * Compose's variable interpolation in one string, with Compose's rules (compose-go's `template`
 * package, the reference): `$$` is a literal `$`; `$NAME` and `${NAME}`; `${NAME:-default}`
 * (unset or empty), `${NAME-default}` (unset), `${NAME:?message}` and `${NAME?message}` (an error
 * naming the variable), `${NAME:+alternative}` and `${NAME+alternative}`; the word after an
 * operator is interpolated in turn (`${A:-${B:-c}}`). A `$` that starts none of these stays as
 * it is; `${` that starts no valid name is an error. An unset variable without a default becomes
 * the empty string and is reported in `unset` (Compose warns about it).
 *
 * No library does Compose's grammar: dotenv-expand has `:-` and `-` but not `?`, `+` or `$$`.
 */
import { invalidArgument } from '../errors.ts';

/** A variable's value, or undefined when it is not set (set-but-empty is ""). */
export type Lookup = (name: string) => string | undefined;

export interface Interpolated {
  value: string;
  /** Variables that were read but not set, and had no default. */
  unset: string[];
}

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;
const OPERATORS = [':-', '-', ':?', '?', ':+', '+'] as const;

/** Interpolates `template`; throws InvalidArgument for a malformed `${…}` or a `?` variable that is missing. */
export function interpolate(template: string, lookup: Lookup): Interpolated {
  const unset: string[] = [];
  const value = substitute(template, lookup, unset);
  return { value, unset: [...new Set(unset)] };
}

function substitute(s: string, lookup: Lookup, unset: string[]): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const dollar = s.indexOf('$', i);
    if (dollar < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, dollar);
    const next = s[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '{') {
      const close = closingBrace(s, dollar + 1);
      if (close < 0) throw invalidArgument(`invalid interpolation "${s}": "\${" without a closing "}"`);
      out += braced(s.slice(dollar + 2, close), s, lookup, unset);
      i = close + 1;
    } else {
      const name = NAME.exec(s.slice(dollar + 1))?.[0];
      if (name === undefined) {
        out += '$'; // `$5`, `$ `, a trailing `$`: not a variable, kept as written
        i = dollar + 1;
      } else {
        out += read(name, lookup, unset);
        i = dollar + 1 + name.length;
      }
    }
  }
  return out;
}

/** The index of the `}` that closes the `{` at `open`, counting nested `${…}`. */
function closingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** The inside of `${…}`: a name, optionally followed by an operator and a word. */
function braced(inner: string, template: string, lookup: Lookup, unset: string[]): string {
  const name = NAME.exec(inner)?.[0];
  const rest = name === undefined ? inner : inner.slice(name.length);
  const op = OPERATORS.find((o) => rest.startsWith(o));
  if (name === undefined || (rest !== '' && op === undefined))
    throw invalidArgument(`invalid interpolation "${template}": "\${${inner}}" is not \${NAME} or \${NAME<op>word} (op one of ${OPERATORS.join(' ')})`);
  if (op === undefined) return read(name, lookup, unset);
  const word = rest.slice(op.length);
  const value = lookup(name);
  const present = op.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
  switch (op) {
    case ':-':
    case '-':
      return present ? value! : substitute(word, lookup, unset);
    case ':+':
    case '+':
      return present ? substitute(word, lookup, unset) : (value ?? '');
    default: {
      if (present) return value!;
      const reason = substitute(word, lookup, unset);
      throw invalidArgument(`required variable ${name} is ${value === undefined ? 'not set' : 'empty'}${reason ? `: ${reason}` : ''}`);
    }
  }
}

function read(name: string, lookup: Lookup, unset: string[]): string {
  const value = lookup(name);
  if (value === undefined) unset.push(name);
  return value ?? '';
}
