/**
 * Deepest nesting of stored job data that the operators' tools (CLI, dashboard API, Bull Board)
 * serialise. `JSON.stringify` recurses once per level and overflows the stack somewhere between
 * 4,000 and 8,000 levels, depending on how deep the stack already is, so this keeps a wide margin.
 * The ingest refuses bodies nested deeper than `MAX_JSON_DEPTH` (at most this), so only jobs
 * stored before that limit, or by other producers, can be deeper.
 */
export const MAX_RENDER_DEPTH = 1000;

/**
 * Whether `value` nests objects and arrays more than `limit` levels deep (a scalar is depth 0,
 * `{}` depth 1). Iterative, so it is safe on any depth, and it stops at the first branch past
 * the limit.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    const depth = item.depth + 1;
    if (depth > limit) return true;
    for (const child of Object.values(item.value)) {
      if (typeof child === 'object' && child !== null) pending.push({ value: child, depth });
    }
  }
  return false;
}

/** The one line that stands for data too deeply nested to show. */
export function tooDeepProblem(limit = MAX_RENDER_DEPTH): string {
  return `nested more than ${limit} levels deep: too deep to show`;
}
