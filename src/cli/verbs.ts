/** Every verb, one file each. Add a verb: write src/cli/<verb>.ts exporting `register`, list it here. */
import type { Command } from 'commander';
import type { RunVerb } from './main.ts';
import { register as gc } from './gc.ts';
import { register as validate } from './validate.ts';
import { register as pull } from './pull.ts';
import { register as images } from './images.ts';
import { register as content } from './content.ts';
import { register as importVerb } from './import.ts';
import { register as ps } from './ps.ts';
import { register as logs } from './logs.ts';
import { register as top } from './top.ts';
import { register as stats } from './stats.ts';
import { register as restart } from './restart.ts';
import { register as execVerb } from './exec.ts';
import { register as inspect } from './inspect.ts';

import { register as snapshots } from './snapshots.ts';
import { register as mount } from './mount.ts';
import { register as plan } from './plan.ts';
import { register as apply } from './apply.ts';
import { register as runVerb } from './run.ts';
import { register as status } from './status.ts';
import { register as rollout } from './rollout.ts';
import { register as reconcile } from './reconcile.ts';
import { register as convert } from './convert.ts';
import { register as network } from './network.ts';
import { register as secret } from './secret.ts';
export type RegisterVerb = (program: Command, run: RunVerb) => void;

export const VERBS: RegisterVerb[] = [
  gc,
  validate,
  pull,
  images,
  content,
  importVerb,
  ps,
  logs,
  top,
  stats,
  restart,
  execVerb,
  inspect,
  snapshots,
  mount,
  plan,
  apply,
  runVerb,
  status,
  rollout,
  convert,
  reconcile,
  network,
  secret,
];
