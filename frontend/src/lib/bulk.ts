/** Runs `fn` over `items` with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

export interface BulkOutcome<J> {
  ok: J[];
  failed: Array<{ id: string; message: string }>;
}

export function summarize(verb: string, outcome: BulkOutcome<unknown>): string {
  const n = outcome.ok.length;
  const parts = [`${verb} ${n} job${n === 1 ? '' : 's'}`];
  if (outcome.failed.length) {
    const reasons = [...new Set(outcome.failed.map((f) => f.message))].slice(0, 2).join('; ');
    parts.push(`${outcome.failed.length} not changed (${reasons})`);
  }
  return parts.join(', ');
}
