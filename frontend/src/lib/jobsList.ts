// Pure reducer for the live Jobs table: keyset pages from `jobs(...)` (./paging) plus
// `jobUpdates` patches (coalesced per animation frame by the caller).
import type { JobRowFragment, JobStatus, JobUpdatesSubscription, Priority } from '../gql/graphql';
import { latestByKey } from './frameBatcher';
import { emptyPagedList, pagingReducer, type PagedList, type PagingAction } from './paging';

export type JobUpdate = JobUpdatesSubscription['jobUpdates'];

export interface JobRow extends Omit<JobRowFragment, 'priority' | 'maxAttempts'> {
  priority: Priority | null;
  maxAttempts: number | null;
  /** Seq of the last applied live update (0 = from a query). */
  seq: number;
}

export interface JobsListState extends PagedList<JobRow> {
  /** Live changes to jobs that are not loaded (e.g. entered the filter): offer a refresh. */
  outside: number;
}

export const initialJobsList: JobsListState = { ...emptyPagedList<JobRow>(), outside: 0 };

export type JobsListAction =
  | PagingAction<JobRowFragment>
  | { type: 'updates'; updates: JobUpdate[]; maxAttemptsByKind?: Record<string, number>; statusFilter?: JobStatus[] }
  /**
   * Mutation results. `ifSeq` holds each row's seq when the mutation was sent: a row
   * that got a live update since then already has fresher data and is not patched.
   */
  | { type: 'patch'; jobs: JobRowFragment[]; ifSeq?: ReadonlyMap<string, number> };

const TERMINAL = new Set<JobStatus>(['SUCCEEDED', 'FAILED', 'CANCELLED']);

function fromNode(n: JobRowFragment, prev?: JobRow): JobRow {
  return { ...n, seq: prev?.seq ?? 0 };
}

export function jobsListReducer(state: JobsListState, action: JobsListAction): JobsListState {
  switch (action.type) {
    case 'patch': {
      const rows = new Map(state.rows);
      let changed = false;
      for (const j of action.jobs) {
        const prev = rows.get(j.id);
        if (!prev) continue;
        if (action.ifSeq && action.ifSeq.has(j.id) && action.ifSeq.get(j.id) !== prev.seq) continue;
        rows.set(j.id, { ...prev, ...j });
        changed = true;
      }
      return changed ? { ...state, rows } : state;
    }
    case 'updates': {
      const latest = latestByKey(action.updates, (u) => u.jobId, (u) => u.seq);
      // A job submitted and started within one frame arrives here as its latest update
      // only (e.g. STARTED): remember which jobs this batch saw submitted, and when.
      const submittedAt = new Map<string, string>();
      const startedAt = new Map<string, string>();
      for (const u of action.updates) {
        if (u.type === 'SUBMITTED') submittedAt.set(u.jobId, u.at);
        else if (u.type === 'STARTED') startedAt.set(u.jobId, u.at);
      }
      const rows = new Map(state.rows);
      const fresh: string[] = [];
      let outside = state.outside;
      let changed = false;
      for (const u of latest) {
        const prev = rows.get(u.jobId);
        if (prev) {
          if (u.seq < prev.seq) continue;
          const terminal = TERMINAL.has(u.status);
          const restarted = u.type === 'STARTED' || u.type === 'RETRIED' || u.type === 'RETRY_SCHEDULED';
          rows.set(u.jobId, {
            ...prev,
            status: u.status,
            progress: u.progress,
            progressMessage: u.progressMessage ?? (u.type === 'PROGRESS' ? prev.progressMessage : null),
            attempt: u.attempt,
            seq: u.seq,
            startedAt: u.type === 'STARTED' ? u.at : prev.startedAt,
            finishedAt: terminal ? prev.finishedAt ?? u.at : restarted ? null : prev.finishedAt,
          });
          changed = true;
        } else if (action.statusFilter?.length && !action.statusFilter.includes(u.status)) {
          // Not loaded and not in the status filter: nothing to show.
          continue;
        } else if (submittedAt.has(u.jobId)) {
          rows.set(u.jobId, {
            id: u.jobId,
            kind: u.kind,
            queue: u.queue,
            status: u.status,
            priority: null,
            progress: u.progress,
            progressMessage: u.progressMessage ?? null,
            attempt: u.attempt,
            maxAttempts: action.maxAttemptsByKind?.[u.kind] ?? null,
            createdAt: submittedAt.get(u.jobId) ?? u.at,
            runAt: null,
            nextRunAt: null,
            startedAt: startedAt.get(u.jobId) ?? null,
            finishedAt: TERMINAL.has(u.status) ? u.at : null,
            seq: u.seq,
          });
          fresh.push(u.jobId);
          changed = true;
        } else {
          outside++;
        }
      }
      if (!changed && outside === state.outside) return state;
      return {
        ...state,
        rows,
        ids: fresh.length ? [...fresh.reverse(), ...state.ids] : state.ids,
        totalCount: state.totalCount == null ? null : state.totalCount + fresh.length,
        outside,
      };
    }
    default: {
      const next = pagingReducer(state, action, fromNode);
      // A fresh first page shows every change made so far.
      const fresh = action.type === 'reset' || (action.type === 'page' && action.mode !== 'append');
      return fresh && next.outside ? { ...next, outside: 0 } : next;
    }
  }
}
