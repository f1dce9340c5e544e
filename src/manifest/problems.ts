/**
 * A problem in the user's manifests, always with the place it was found (file:line:col), and the
 * error thrown for a set that has any: it carries EVERY problem, so one `berth validate` run shows
 * them all, and a set with any problem is never applied in part.
 */
import { compareText } from '../compare-text.ts';
import { BerthError, formatPlace, type Place } from '../errors.ts';

export interface ManifestProblem {
  place: Place;
  message: string;
}

/** `file:line:col: message`, the line format editors and CI annotate from. */
export function formatProblem(p: ManifestProblem): string {
  const where = formatPlace(p.place);
  return where ? `${where}: ${p.message}` : p.message;
}

/** Orders problems by file, then line, then column, so output is stable and reads top-down. */
export function sortProblems(problems: ManifestProblem[]): ManifestProblem[] {
  return [...problems].sort(
    (a, b) =>
      compareText(a.place.file ?? '', b.place.file ?? '') ||
      (a.place.line ?? 0) - (b.place.line ?? 0) ||
      (a.place.col ?? 0) - (b.place.col ?? 0) ||
      compareText(a.message, b.message),
  );
}

/** Thrown by `loadManifests` when the set has any problem (kind InvalidArgument). */
export class ManifestSetError extends BerthError {
  readonly problems: ManifestProblem[];

  constructor(problems: ManifestProblem[]) {
    const sorted = sortProblems(problems);
    const head = `${sorted.length} problem${sorted.length === 1 ? '' : 's'} in the manifests:`;
    super('InvalidArgument', [head, ...sorted.map(formatProblem)].join('\n'), { place: sorted[0]?.place });
    this.name = 'ManifestSetError';
    this.problems = sorted;
  }
}
