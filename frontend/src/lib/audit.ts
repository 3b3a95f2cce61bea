// Pure helpers for the audit log and policy decision pages.

/** A one-line summary of what an audit entry changed, from its before/after JSON. */
export function summarizeChange(before: unknown, after: unknown): string {
  const b = asRecord(before);
  const a = asRecord(after);
  if (b && a) {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    const changed = keys.filter((k) => !sameJson(b[k], a[k]));
    if (!changed.length) return 'no change';
    return changed.map((k) => (k in b ? (k in a ? `${k}: ${short(b[k])} → ${short(a[k])}` : `−${k}`) : `${k}: ${short(a[k])}`)).join(', ');
  }
  if (a) return Object.entries(a).map(([k, v]) => `${k}: ${short(v)}`).join(', ') || '—';
  if (b) return `removed ${Object.entries(b).map(([k, v]) => `${k}: ${short(v)}`).join(', ')}`;
  if (before != null || after != null) return `${before == null ? '∅' : short(before)} → ${after == null ? '∅' : short(after)}`;
  return '—';
}

function asRecord(v: unknown): Record<string, unknown> | null {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function sameJson(x: unknown, y: unknown): boolean {
  return JSON.stringify(x) === JSON.stringify(y);
}

export function short(v: unknown, max = 40): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Builds a GraphQL filter from form values: blank fields are left out (null filter if all blank). */
export function buildFilter<K extends string>(values: Partial<Record<K, string | null | undefined>>): Partial<Record<K, string>> | null {
  const out: Partial<Record<K, string>> = {};
  for (const [k, v] of Object.entries(values) as [K, string | null | undefined][]) {
    const t = v?.trim();
    if (t) out[k] = t;
  }
  return Object.keys(out).length ? out : null;
}

/** Appends a page to a keyset-paginated list, dropping ids already shown. */
export function appendPage<T extends { id: string }>(prev: readonly T[], next: readonly T[]): T[] {
  const seen = new Set(prev.map((x) => x.id));
  return [...prev, ...next.filter((x) => !seen.has(x.id))];
}
