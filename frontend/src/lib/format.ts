export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  if (m < 60) return sec ? `${m}m ${sec}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}

export function ageMs(iso: string | null | undefined, now: number): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : now - t;
}

export function formatAge(iso: string | null | undefined, now: number): string {
  const ms = ageMs(iso, now);
  if (ms == null) return '—';
  if (ms < 5000) return 'just now';
  return `${formatDuration(ms)} ago`;
}

export function jobDuration(startedAt: string | null | undefined, finishedAt: string | null | undefined, now: number): string {
  if (!startedAt) return '—';
  const start = Date.parse(startedAt);
  // `now` ticks once a second; never show a running job as younger than it is.
  const end = finishedAt ? Date.parse(finishedAt) : Math.max(now, Date.now());
  return formatDuration(end - start);
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

export function formatClock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const base = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return `${base}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

export function shortId(id: string): string {
  return id.length > 10 ? id.slice(0, 8) : id;
}

export function pct(progress: number | null | undefined): number {
  if (progress == null || !Number.isFinite(progress)) return 0;
  // The API reports progress as 0..1; tolerate 0..100 too.
  const p = progress > 1 ? progress / 100 : progress;
  return Math.max(0, Math.min(100, p * 100));
}

export function prettyJson(v: unknown): string {
  if (v === undefined) return '';
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    // Only a BigInt or a cycle gets here; JSON from the API has neither.
    return typeof v === 'bigint' ? `${v}n` : '(not representable as JSON)';
  }
}

/** The bound the dashboard's queries put on `totalCount(atMost:)` (see lib/operations.ts). */
export const COUNT_CAP = 10_000;

/** A count from `totalCount(atMost: COUNT_CAP)`: at the cap it means "at least", shown as 10,000+. */
export function formatCount(n: number, cap: number = COUNT_CAP): string {
  return n >= cap ? `${cap.toLocaleString()}+` : n.toLocaleString();
}

/** What the Result card says when a job has no result (yet). */
export function resultPlaceholder(status: string): string {
  if (status === 'SUCCEEDED') return 'None (the job returned nothing)';
  if (status === 'FAILED' || status === 'CANCELLED') return `No result: the job ${status.toLowerCase()}`;
  return 'Not yet: the result appears when the job succeeds';
}

/** An event's data for the timeline: durations in words (`delaySeconds: 0.0617...` is
 * "retry in 62ms"), the rest as JSON. */
export function formatEventData(data: object): string {
  const lines: string[] = [];
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (key === 'delaySeconds' && typeof value === 'number') lines.push(`retry in ${formatDuration(value * 1000)}`);
    else if (key === 'attempt' && typeof value === 'number') lines.push(`attempt ${value}`);
    else rest[key] = value;
  }
  if (Object.keys(rest).length) lines.push(JSON.stringify(rest, null, 2));
  return lines.join('\n');
}
