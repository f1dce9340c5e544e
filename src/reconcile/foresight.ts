/**
 * `berth plan` foresees what the checks before stop would refuse: a create or recreate whose image
 * is already there (no pull before it) and that the runtime would refuse becomes a wait step that
 * says so (`web: recreate blocked (command "/nope" not found in image …)`). Applying such a plan
 * refuses the step and keeps the old container, as the step would have.
 */
import type { ContainerDoc } from '../manifest/types.ts';
import type { Step } from './types.ts';

export async function withForesight(steps: Step[], refusal: (doc: ContainerDoc) => Promise<string | undefined>): Promise<Step[]> {
  const out: Step[] = [];
  for (const s of steps) {
    const checkable = (s.kind === 'create' || s.kind === 'recreate') && !s.after.some((id) => id.startsWith('pull:'));
    const why = checkable ? await refusal(s.doc) : undefined;
    if (why === undefined || !checkable) out.push(s);
    else out.push({ kind: 'wait', id: s.id, after: s.after, object: s.container, reason: `${s.container}: ${s.kind} blocked (${why})` });
  }
  return out;
}
