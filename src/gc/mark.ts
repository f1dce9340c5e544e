/**
 * Tricolour mark over a reference graph (after containerd's pkg/gc): pure, no I/O.
 *
 * White nodes are unvisited, grey ones are reachable but their references not yet followed, black
 * ones are reachable and done. Starting with the roots grey, each grey node's references are
 * greyed and the node blackened, until nothing is grey. The black set is everything reachable;
 * whatever a sweeper finds outside it is garbage.
 *
 * Iterative (an explicit grey stack), so a long snapshot parent chain cannot overflow the call
 * stack; each node is expanded once, so cycles terminate.
 *
 * @example
 *   const edges = new Map([['image:a', ['blob:m']], ['blob:m', ['blob:c', 'blob:l']]]);
 *   mark(['image:a'], (n) => edges.get(n) ?? []); // Set { 'image:a', 'blob:m', 'blob:c', 'blob:l' }
 */
export function mark<N>(roots: Iterable<N>, refs: (node: N) => Iterable<N>): Set<N> {
  const black = new Set<N>();
  const greySeen = new Set<N>();
  const grey: N[] = [];
  for (const r of roots) {
    if (!greySeen.has(r)) {
      greySeen.add(r);
      grey.push(r);
    }
  }
  while (grey.length > 0) {
    const node = grey.pop()!;
    for (const ref of refs(node)) {
      if (!greySeen.has(ref)) {
        greySeen.add(ref);
        grey.push(ref);
      }
    }
    black.add(node);
  }
  return black;
}

/** Everything in `all` that `reachable` does not contain: what a sweep removes. */
export function unreachable<N>(all: Iterable<N>, reachable: ReadonlySet<N>): N[] {
  const out: N[] = [];
  for (const n of all) if (!reachable.has(n)) out.push(n);
  return out;
}
