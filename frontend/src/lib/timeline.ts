// Pure merge logic for a job's event timeline.
//
// Events reach the Job page from two places:
//   * history: `job.events(after:)` over HTTP (complete as of the moment it ran), and
//   * live:    the `jobEvents(jobId, after)` subscription, which starts with a SNAPSHOT
//              (current state, seq = latest seq) unless `after` is given, then replays
//              seq > after, then streams live events.
// Both may overlap and the socket may drop and resume (`after: resumeAfter(state)`).
// This module merges them: dedupe by seq, keep order, track the newest state, and
// detect gaps (a live seq that skips ahead of what is known) so the caller can
// refetch the missing range over HTTP.
//
// Assumption (from the contract): seq is per job, increasing, starting at 1. If the
// backend ever numbers events globally, gaps are "confirmed" by one history fetch and
// are not asked for again, so this degrades to one extra request per gap.

export type TimelineEventType =
  | 'SNAPSHOT'
  | 'SUBMITTED'
  | 'SCHEDULED'
  | 'QUEUED'
  | 'STARTED'
  | 'PROGRESS'
  | 'LOG'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'RETRY_SCHEDULED'
  | 'TIMED_OUT'
  | 'LOST'
  | 'CANCEL_REQUESTED'
  | 'CANCELLED'
  | 'RETRIED'
  | 'SNOOZED';

export type TimelineStatus =
  | 'QUEUED'
  | 'SCHEDULED'
  | 'RUNNING'
  | 'RETRYING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELLED';

export interface TimelineEvent {
  seq: number;
  type: TimelineEventType;
  status: TimelineStatus;
  progress?: number | null;
  message?: string | null;
  data?: unknown;
  at: string;
}

export interface CurrentState {
  seq: number;
  status: TimelineStatus;
  progress: number | null;
  message: string | null;
  at: string;
}

export interface TimelineState {
  /** Real events (never SNAPSHOT), unique by seq, ascending. */
  events: TimelineEvent[];
  /** Every seq <= knownThrough is either in `events` or confirmed absent. */
  knownThrough: number;
  /** Highest seq heard of from any source (including a SNAPSHOT). */
  maxSeq: number;
  /** Latest known state of the job (from the newest event or snapshot). */
  current: CurrentState | null;
}

export interface MergeResult {
  state: TimelineState;
  /** Set when events are missing: fetch `job.events(after: gap.after)`. */
  gap: { after: number; upTo: number } | null;
}

export const TERMINAL_STATUSES: ReadonlySet<TimelineStatus> = new Set<TimelineStatus>([
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
]);

export function isTerminalStatus(status: TimelineStatus | null | undefined): boolean {
  return status != null && TERMINAL_STATUSES.has(status);
}

export function emptyTimeline(): TimelineState {
  return { events: [], knownThrough: 0, maxSeq: 0, current: null };
}

function toCurrent(e: TimelineEvent, prev: CurrentState | null): CurrentState {
  // PROGRESS/LOG events may omit progress/message; keep the previous value then.
  const progress = e.progress ?? prev?.progress ?? null;
  let message = e.message ?? null;
  if (e.type === 'LOG' || (message == null && e.type === 'PROGRESS')) {
    message = message ?? prev?.message ?? null;
  }
  return { seq: e.seq, status: e.status, progress, message, at: e.at };
}

function insertSorted(events: TimelineEvent[], incoming: TimelineEvent[]): TimelineEvent[] {
  if (incoming.length === 0) return events;
  const seen = new Set(events.map((e) => e.seq));
  const fresh: TimelineEvent[] = [];
  for (const e of incoming) {
    if (e.type === 'SNAPSHOT' || seen.has(e.seq)) continue;
    seen.add(e.seq);
    fresh.push(e);
  }
  if (fresh.length === 0) return events;
  const last = events.length ? events[events.length - 1]!.seq : 0;
  fresh.sort((a, b) => a.seq - b.seq);
  if (fresh[0]!.seq > last) return events.concat(fresh); // common case: appending live events
  return events.concat(fresh).sort((a, b) => a.seq - b.seq);
}

function advanceKnown(events: TimelineEvent[], knownThrough: number): number {
  // Extend the contiguous prefix through any events already held.
  let k = knownThrough;
  // events are sorted; find the first index with seq > k and walk forward.
  let i = 0;
  while (i < events.length && events[i]!.seq <= k) i++;
  while (i < events.length && events[i]!.seq === k + 1) {
    k++;
    i++;
  }
  return k;
}

function newestCurrent(state: TimelineState, candidates: TimelineEvent[]): CurrentState | null {
  let cur = state.current;
  for (const e of [...candidates].sort((a, b) => a.seq - b.seq)) {
    if (!cur || e.seq >= cur.seq) {
      if (e.type === 'SNAPSHOT') {
        cur = {
          seq: e.seq,
          status: e.status,
          progress: e.progress ?? cur?.progress ?? null,
          message: e.message ?? null,
          at: e.at,
        };
      } else {
        cur = toCurrent(e, cur);
      }
    }
  }
  return cur;
}

function withGap(state: TimelineState): MergeResult {
  return {
    state,
    gap: state.maxSeq > state.knownThrough ? { after: state.knownThrough, upTo: state.maxSeq } : null,
  };
}

/**
 * Merge events from the subscription (SNAPSHOT, replay or live), in arrival order.
 * Duplicates (same seq) are ignored. Returns a gap when a seq skipped ahead.
 */
export function applyLive(state: TimelineState, incoming: TimelineEvent[]): MergeResult {
  if (incoming.length === 0) return withGap(state);
  const events = insertSorted(state.events, incoming);
  let maxSeq = state.maxSeq;
  for (const e of incoming) maxSeq = Math.max(maxSeq, e.seq);
  const next: TimelineState = {
    events,
    knownThrough: advanceKnown(events, state.knownThrough),
    maxSeq,
    current: newestCurrent(state, incoming),
  };
  return withGap(next);
}

/**
 * Merge a history page fetched with `job.events(after)`. The server returned every
 * event with seq > after that existed when it answered, so everything up to
 * max(upTo, newest returned seq) is now known: seqs in that range that did not come
 * back do not exist and are not asked for again.
 */
export function applyHistory(
  state: TimelineState,
  fetched: TimelineEvent[],
  range: { after: number; upTo?: number; complete?: boolean },
): MergeResult {
  const events = insertSorted(state.events, fetched);
  let maxSeq = state.maxSeq;
  for (const e of fetched) maxSeq = Math.max(maxSeq, e.seq);
  let knownThrough = state.knownThrough;
  const complete = range.complete ?? true;
  if (range.after <= knownThrough) {
    if (complete) {
      const newest = fetched.reduce((m, e) => Math.max(m, e.seq), 0);
      knownThrough = Math.max(knownThrough, newest, range.upTo ?? 0);
    }
  }
  knownThrough = advanceKnown(events, knownThrough);
  return withGap({ events, knownThrough, maxSeq, current: newestCurrent(state, fetched) });
}

/** The `after` to resubscribe with after a dropped connection (undefined = ask for a SNAPSHOT). */
export function resumeAfter(state: TimelineState): number | undefined {
  if (state.knownThrough > 0) return state.knownThrough;
  return state.maxSeq > 0 ? state.maxSeq : undefined;
}

export function isFinished(state: TimelineState): boolean {
  return isTerminalStatus(state.current?.status);
}
