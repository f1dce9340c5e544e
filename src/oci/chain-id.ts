/**
 * OCI chain IDs (image-spec config.md "Layer ChainID"): ChainID(L0) = DiffID(L0);
 * ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)). They name the snapshot that
 * holds every layer up to n, so images sharing a base share its snapshots.
 */
import { assertDigest, sha256Digest } from './digest.ts';

/** Chain IDs for `diffIds` (base first), one per layer. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const [i, d] of diffIds.entries()) {
    assertDigest(d, `diff_id[${i}]`);
    out.push(i === 0 ? d : sha256Digest(`${out[i - 1]} ${d}`));
  }
  return out;
}
