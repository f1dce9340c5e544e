/**
 * Every verb, one file each, under the names it registers. Add a verb: write src/cli/<verb>.ts
 * exporting `register`, list it here. A command loads only its own verb's file (and what that
 * imports): `berth run` never loads the pull, logs or network verbs' code, which an idle daemon
 * would keep resident for nothing (issue 14). Help and unknown words load them all.
 */
import type { Command } from 'commander';
import type { RunVerb } from './main.ts';

export type RegisterVerb = (program: Command, run: RunVerb) => void;

export interface Verb {
  /** The top-level commands (and aliases) its `register` adds. */
  names: string[];
  load: () => Promise<{ register: RegisterVerb }>;
}

export const VERBS: Verb[] = [
  { names: ['gc'], load: () => import('./gc.ts') },
  { names: ['validate'], load: () => import('./validate.ts') },
  { names: ['pull'], load: () => import('./pull.ts') },
  { names: ['images'], load: () => import('./images.ts') },
  { names: ['content'], load: () => import('./content.ts') },
  { names: ['import'], load: () => import('./import.ts') },
  { names: ['ps'], load: () => import('./ps.ts') },
  { names: ['logs'], load: () => import('./logs.ts') },
  { names: ['top'], load: () => import('./top.ts') },
  { names: ['stats'], load: () => import('./stats.ts') },
  { names: ['restart'], load: () => import('./restart.ts') },
  { names: ['exec'], load: () => import('./exec.ts') },
  { names: ['inspect'], load: () => import('./inspect.ts') },
  { names: ['snapshots'], load: () => import('./snapshots.ts') },
  { names: ['mount', 'unmount', 'umount'], load: () => import('./mount.ts') },
  { names: ['plan'], load: () => import('./plan.ts') },
  { names: ['apply'], load: () => import('./apply.ts') },
  { names: ['run'], load: () => import('./run.ts') },
  { names: ['status'], load: () => import('./status.ts') },
  { names: ['rollout'], load: () => import('./rollout.ts') },
  { names: ['convert'], load: () => import('./convert.ts') },
  { names: ['reconcile'], load: () => import('./reconcile.ts') },
  { names: ['network'], load: () => import('./network.ts') },
  { names: ['secret'], load: () => import('./secret.ts') },
];

/** The verbs a command line needs: the one it names, or every verb (help, no verb, a word that is none). */
export function verbsFor(word: string | undefined): Verb[] {
  const named = VERBS.find((v) => word !== undefined && v.names.includes(word));
  return named ? [named] : VERBS;
}
