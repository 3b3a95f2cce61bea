import { memo, useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { useQuery } from 'urql';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useClients, useConnection } from '../lib/ApiProvider';
import { describe } from '../lib/client';
import { createFrameBatcher } from '../lib/frameBatcher';
import { formatAge, formatCount, jobDuration, shortId } from '../lib/format';
import { useDocumentTitle, useMediaQuery, useNow, useOnReconnect } from '../lib/hooks';
import { initialJobsList, jobsListReducer, type JobRow, type JobUpdate } from '../lib/jobsList';
import { runBulkJobAction, type JobAction } from '../lib/jobActions';
import { summarize } from '../lib/bulk';
import { CancelJobsMutation, JobKindsQuery, JobsQuery, JobUpdatesSubscription, RetryJobsMutation } from '../lib/operations';
import type { JobFilter, JobStatus } from '../gql/graphql';
import { CANCELLABLE, EmptyState, ErrorState, JOB_STATUSES, LoadingState, PageHeader, ProgressBar, RETRYABLE, StatusBadge, statusLabel } from '../components/ui';
import { useMe } from '../lib/me';
import { useToast } from '../components/Toasts';

const PAGE_SIZE = 100;
/** Later pages are bigger: scrolling deep into history should not take 100 round trips. */
const MORE_PAGE_SIZE = 500;
const FALLBACK_POLL_MS = 4000;
const LIVE_RETRY_MS = 15_000;

function useFilter(): [JobFilter, (f: { status: JobStatus[]; kind: string | null }) => void, JobStatus[], string | null] {
  const [params, setParams] = useSearchParams();
  const statusParam = params.get('status') ?? '';
  const kind = params.get('kind');
  const statuses = useMemo(
    () => statusParam.split(',').filter((s): s is JobStatus => (JOB_STATUSES as string[]).includes(s)),
    [statusParam],
  );
  const filter = useMemo<JobFilter>(() => {
    const f: JobFilter = {};
    if (statuses.length) f.status = statuses;
    if (kind) f.kind = [kind];
    return f;
  }, [statuses, kind]);
  const set = useCallback(
    (f: { status: JobStatus[]; kind: string | null }) => {
      const next = new URLSearchParams();
      if (f.status.length) next.set('status', f.status.join(','));
      if (f.kind) next.set('kind', f.kind);
      setParams(next, { replace: true });
    },
    [setParams],
  );
  return [filter, set, statuses, kind];
}

export function JobsPage() {
  useDocumentTitle('Jobs');
  const { urql } = useClients();
  const connection = useConnection();
  const toast = useToast();
  const [filter, setFilter, statuses, kind] = useFilter();
  const filterKey = JSON.stringify(filter);
  const [state, dispatch] = useReducer(jobsListReducer, initialJobsList);
  const [selected, setSelected] = useState<Set<string>>(() => new Set());
  const [liveError, setLiveError] = useState<string | null>(null);
  const [liveEpoch, setLiveEpoch] = useState(0);
  const [busy, setBusy] = useState<JobAction | null>(null);
  const [kinds] = useQuery({ query: JobKindsQuery });
  const maxAttemptsByKind = useMemo(
    () => Object.fromEntries((kinds.data?.jobKinds ?? []).map((k) => [k.name, k.maxAttempts])),
    [kinds.data],
  );
  const maxAttemptsRef = useRef(maxAttemptsByKind);
  maxAttemptsRef.current = maxAttemptsByKind;
  const loadToken = useRef(0);

  const loadFirst = useCallback(
    async (mode: 'replace' | 'merge') => {
      const token = ++loadToken.current;
      if (mode === 'replace') dispatch({ type: 'reset' });
      const res = await urql.query(JobsQuery, { filter, first: PAGE_SIZE }).toPromise();
      if (token !== loadToken.current) return;
      if (res.error || !res.data) {
        dispatch({ type: 'error', error: res.error ? describe(res.error) : 'No data' });
        return;
      }
      const c = res.data.jobs;
      dispatch({
        type: 'page',
        mode,
        nodes: c.edges.map((e) => e.node),
        totalCount: c.totalCount,
        endCursor: c.pageInfo.endCursor ?? null,
        hasNextPage: c.pageInfo.hasNextPage,
      });
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [urql, filterKey],
  );

  const stateRef = useRef(state);
  stateRef.current = state;
  const loadMore = useCallback(async () => {
    const s = stateRef.current;
    if (!s.hasNextPage || s.loadingMore || s.loading || !s.endCursor) return;
    const token = loadToken.current;
    dispatch({ type: 'loadingMore' });
    const res = await urql.query(JobsQuery, { filter, first: MORE_PAGE_SIZE, after: s.endCursor }).toPromise();
    if (token !== loadToken.current) return;
    if (res.error || !res.data) {
      dispatch({ type: 'error', error: res.error ? describe(res.error) : 'No data' });
      return;
    }
    const c = res.data.jobs;
    dispatch({
      type: 'page',
      mode: 'append',
      nodes: c.edges.map((e) => e.node),
      totalCount: c.totalCount,
      endCursor: c.pageInfo.endCursor ?? null,
      hasNextPage: c.pageInfo.hasNextPage,
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [urql, filterKey]);

  useEffect(() => {
    setSelected(new Set());
    void loadFirst('replace');
  }, [loadFirst]);

  // Missed live updates while disconnected: refresh the first page.
  useOnReconnect(connection.reconnects, () => void loadFirst('merge'));

  // Live updates, coalesced to one state update per animation frame.
  useEffect(() => {
    setLiveError(null);
    const batcher = createFrameBatcher<JobUpdate>((updates) =>
      dispatch({ type: 'updates', updates, maxAttemptsByKind: maxAttemptsRef.current, statusFilter: filter.status ?? undefined }),
    );
    // Subscribe without the status part of the filter: a loaded row that changes to a
    // status outside the filter must still update (e.g. RUNNING -> CANCELLED).
    const { status: _status, ...liveFilter } = filter;
    const sub = urql.subscription(JobUpdatesSubscription, { filter: liveFilter }).subscribe((res) => {
      if (res.error) {
        setLiveError(describe(res.error));
        return;
      }
      if (res.data?.jobUpdates) batcher.push(res.data.jobUpdates);
    });
    return () => {
      batcher.cancel();
      sub.unsubscribe();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [urql, filterKey, liveEpoch]);

  // A transient subscription error (e.g. a server cap): try live updates again later.
  // A schema error (the API has no jobUpdates) stays in polling mode.
  useEffect(() => {
    if (!liveError || /Cannot query field|Unknown type/i.test(liveError)) return;
    const t = setTimeout(() => setLiveEpoch((e) => e + 1), LIVE_RETRY_MS);
    return () => clearTimeout(t);
  }, [liveError]);

  // Degraded mode: if this API has no jobUpdates subscription, refresh the first page
  // every few seconds instead (and say so in the header).
  useEffect(() => {
    if (!liveError) return;
    const t = setInterval(() => void loadFirst('merge'), FALLBACK_POLL_MS);
    return () => clearInterval(t);
  }, [liveError, loadFirst]);

  const toggleStatus = (s: JobStatus) => {
    const next = statuses.includes(s) ? statuses.filter((x) => x !== s) : [...statuses, s];
    setFilter({ status: next, kind });
  };

  const { caps } = useMe();
  const selectedRows = [...selected].map((id) => state.rows.get(id)).filter((r): r is JobRow => !!r);
  const canCancel = selectedRows.filter((r) => CANCELLABLE.has(r.status));
  const canRetry = selectedRows.filter((r) => RETRYABLE.has(r.status));

  async function bulk(action: JobAction, rows: JobRow[]) {
    if (!rows.length) return;
    setBusy(action);
    const ifSeq = new Map(rows.map((r) => [r.id, stateRef.current.rows.get(r.id)?.seq ?? 0]));
    const outcome = await runBulkJobAction(urql, action, rows.map((r) => r.id));
    setBusy(null);
    dispatch({ type: 'patch', jobs: outcome.ok, ifSeq });
    setSelected((sel) => {
      const next = new Set(sel);
      outcome.ok.forEach((j) => next.delete(j.id));
      return next;
    });
    toast(summarize(action === 'cancel' ? 'Cancel requested for' : 'Retried', outcome), outcome.failed.length ? 'error' : 'success');
  }

  const filterActive = statuses.length > 0 || !!kind;
  const [confirm, setConfirm] = useState<JobAction | null>(null);
  useEffect(() => setConfirm(null), [filterKey]);

  async function bulkByFilter(action: JobAction) {
    setConfirm(null);
    setBusy(action);
    const res =
      action === 'cancel'
        ? await urql.mutation(CancelJobsMutation, { filter }).toPromise()
        : await urql.mutation(RetryJobsMutation, { filter }).toPromise();
    setBusy(null);
    if (res.error) {
      toast(`${action === 'cancel' ? 'Cancel' : 'Retry'} failed: ${describe(res.error)}`, 'error');
      return;
    }
    const data = res.data as { cancelJobs?: { count: number }; retryJobs?: { count: number } } | undefined;
    const n = (action === 'cancel' ? data?.cancelJobs?.count : data?.retryJobs?.count) ?? 0;
    toast(`${action === 'cancel' ? 'Cancel requested for' : 'Retried'} ${n} matching job${n === 1 ? '' : 's'}`, 'success');
    void loadFirst('merge');
  }

  const allSelected = state.ids.length > 0 && selected.size === state.ids.length;
  const someSelected = selected.size > 0 && !allSelected;

  return (
    <div className="page page-fill">
      <PageHeader
        title="Jobs"
        subtitle={
          <span aria-live="polite">
            {state.totalCount == null ? '…' : `${formatCount(state.totalCount)} job${state.totalCount === 1 ? '' : 's'}`}
            {statuses.length || kind ? ' matching filters' : ''}
            {' · '}
            {liveError ? (
              <span className="text-warn" title={liveError} data-testid="live-fallback">
                live updates unavailable: refreshing every {FALLBACK_POLL_MS / 1000}s
              </span>
            ) : (
              <span className="text-live">live</span>
            )}
          </span>
        }
        actions={
          <Link to="/submit" className="btn btn-primary">
            Submit job
          </Link>
        }
      />

      <div className="filters" role="group" aria-label="Filters">
        <div className="chip-group" role="group" aria-label="Status">
          {JOB_STATUSES.map((s) => (
            <button
              key={s}
              type="button"
              className={`chip status-chip-${s.toLowerCase()}`}
              aria-pressed={statuses.includes(s)}
              onClick={() => toggleStatus(s)}
            >
              {statusLabel(s)}
            </button>
          ))}
        </div>
        <div className="filter-kind">
          <label htmlFor="kind-filter" className="sr-only">
            Kind
          </label>
          <select
            id="kind-filter"
            className="input input-sm"
            value={kind ?? ''}
            onChange={(e) => setFilter({ status: statuses, kind: e.target.value || null })}
          >
            <option value="">All kinds</option>
            {(kinds.data?.jobKinds ?? []).map((k) => (
              <option key={k.name} value={k.name}>
                {k.name}
              </option>
            ))}
            {kind && !kinds.data?.jobKinds.some((k) => k.name === kind) && <option value={kind}>{kind}</option>}
          </select>
        </div>
        {filterActive && (
          <button type="button" className="btn btn-ghost btn-sm" onClick={() => setFilter({ status: [], kind: null })}>
            Clear filters
          </button>
        )}
        {caps.canWrite && filterActive && state.totalCount != null && state.totalCount > 0 && (
          <div className="bulk-filter" role="group" aria-label="Act on every job matching the filters">
            {confirm ? (
              <>
                <span className="bulk-confirm" role="alert">
                  {confirm === 'cancel' ? 'Cancel' : 'Retry'} every job matching these filters ({formatCount(state.totalCount)})?
                </span>
                <button type="button" className={`btn btn-sm ${confirm === 'cancel' ? 'btn-danger' : 'btn-primary'}`} onClick={() => void bulkByFilter(confirm)}>
                  Yes, {confirm} all
                </button>
                <button type="button" className="btn btn-ghost btn-sm" onClick={() => setConfirm(null)}>
                  No
                </button>
              </>
            ) : (
              <>
                <button type="button" className="btn btn-sm btn-danger" onClick={() => setConfirm('cancel')} disabled={busy !== null}>
                  Cancel all matching…
                </button>
                <button type="button" className="btn btn-sm" onClick={() => setConfirm('retry')} disabled={busy !== null}>
                  Retry all matching…
                </button>
              </>
            )}
          </div>
        )}
      </div>

      {caps.canWrite && selected.size > 0 && (
        <div className="selection-bar" role="region" aria-label="Selection">
          <span>
            <strong>{selected.size}</strong> selected
          </span>
          <button type="button" className="btn btn-sm btn-danger" disabled={!canCancel.length || busy !== null} onClick={() => void bulk('cancel', canCancel)}>
            {busy === 'cancel' ? 'Cancelling…' : `Cancel ${canCancel.length}`}
          </button>
          <button type="button" className="btn btn-sm" disabled={!canRetry.length || busy !== null} onClick={() => void bulk('retry', canRetry)}>
            {busy === 'retry' ? 'Retrying…' : `Retry ${canRetry.length}`}
          </button>
          <button type="button" className="btn btn-ghost btn-sm" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      )}

      {state.outside > 0 && (
        <div className="notice" role="status">
          {state.outside} job{state.outside === 1 ? '' : 's'} not shown changed.{' '}
          <button type="button" className="btn btn-ghost btn-xs" onClick={() => void loadFirst('merge')}>
            Refresh
          </button>
        </div>
      )}

      {state.loading && state.ids.length === 0 ? (
        <LoadingState label="Loading jobs…" />
      ) : state.error && state.ids.length === 0 ? (
        <ErrorState title="Could not load jobs" error={state.error} onRetry={() => void loadFirst('replace')} />
      ) : state.ids.length === 0 ? (
        <EmptyState title={statuses.length || kind ? 'No jobs match these filters' : 'No jobs yet'} icon="○">
          {statuses.length || kind ? (
            <p>New matching jobs will appear here as they are submitted.</p>
          ) : (
            <p>
              Jobs appear here live as they are submitted. <Link to="/submit">Submit one</Link>.
            </p>
          )}
        </EmptyState>
      ) : (
        <JobsTable
          state={state}
          selectable={caps.canWrite}
          selected={selected}
          allSelected={allSelected}
          someSelected={someSelected}
          onToggle={(id) =>
            setSelected((sel) => {
              const next = new Set(sel);
              if (next.has(id)) next.delete(id);
              else next.add(id);
              return next;
            })
          }
          onToggleAll={() => setSelected(allSelected ? new Set() : new Set(state.ids))}
          onNearEnd={() => void loadMore()}
        />
      )}

      {state.ids.length > 0 && (
        <div className="table-foot">
          <span>
            Showing {state.ids.length.toLocaleString()}
            {state.totalCount != null ? ` of ${formatCount(Math.max(state.totalCount, state.ids.length))}` : ''}
          </span>
          {state.error && <span className="text-danger">{state.error}</span>}
          {state.hasNextPage && (
            <button type="button" className="btn btn-sm" onClick={() => void loadMore()} disabled={state.loadingMore}>
              {state.loadingMore ? 'Loading…' : 'Load more'}
            </button>
          )}
        </div>
      )}
    </div>
  );
}

function JobsTable({
  state,
  selectable,
  selected,
  allSelected,
  someSelected,
  onToggle,
  onToggleAll,
  onNearEnd,
}: {
  state: typeof initialJobsList;
  /** False for read-only callers (viewers, tokens): no selection checkboxes. */
  selectable: boolean;
  selected: Set<string>;
  allSelected: boolean;
  someSelected: boolean;
  onToggle(id: string): void;
  onToggleAll(): void;
  onNearEnd(): void;
}) {
  const now = useNow(1000);
  const compact = useMediaQuery('(max-width: 760px)');
  const rowHeight = compact ? 88 : 52;
  const scrollRef = useRef<HTMLDivElement>(null);
  const headerCheck = useRef<HTMLInputElement>(null);
  const virtualizer = useVirtualizer({
    count: state.ids.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan: 12,
    getItemKey: (i) => state.ids[i] ?? i,
  });
  useEffect(() => {
    virtualizer.measure();
  }, [rowHeight, virtualizer]);
  useEffect(() => {
    if (headerCheck.current) headerCheck.current.indeterminate = someSelected;
  }, [someSelected]);

  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1]!.index : 0;
  useEffect(() => {
    if (state.hasNextPage && lastIndex >= state.ids.length - 25) onNearEnd();
  }, [lastIndex, state.ids.length, state.hasNextPage, onNearEnd]);

  return (
    <div className="jt" role="table" aria-label="Jobs" aria-rowcount={state.ids.length + 1}>
      <div className="jt-head" role="rowgroup">
        <div className="jt-row jt-header-row" role="row" aria-rowindex={1}>
          <div className="jt-cell jt-check" role="columnheader">
            {selectable ? (
              <input
                ref={headerCheck}
                type="checkbox"
                className="checkbox"
                checked={allSelected}
                onChange={onToggleAll}
                aria-label="Select all loaded jobs"
              />
            ) : (
              <span className="sr-only">Row</span>
            )}
          </div>
          <div className="jt-cell jt-job" role="columnheader">
            Job
          </div>
          <div className="jt-cell jt-status" role="columnheader">
            Status
          </div>
          <div className="jt-cell jt-progress" role="columnheader">
            Progress
          </div>
          <div className="jt-cell jt-attempts" role="columnheader">
            Attempts
          </div>
          <div className="jt-cell jt-age" role="columnheader">
            Age
          </div>
          <div className="jt-cell jt-duration" role="columnheader">
            Duration
          </div>
        </div>
      </div>
      <div className="jt-body" role="rowgroup" ref={scrollRef} data-testid="jobs-scroll">
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((v) => {
            const id = state.ids[v.index]!;
            const row = state.rows.get(id);
            if (!row) return null;
            return (
              <JobRowView
                key={id}
                row={row}
                index={v.index}
                start={v.start}
                height={rowHeight}
                now={row.finishedAt ? 0 : now}
                ageNow={now}
                selectable={selectable}
                selected={selected.has(id)}
                onToggle={onToggle}
              />
            );
          })}
        </div>
      </div>
    </div>
  );
}

const JobRowView = memo(function JobRowView({
  row,
  index,
  start,
  height,
  now,
  ageNow,
  selectable,
  selected,
  onToggle,
}: {
  row: JobRow;
  index: number;
  start: number;
  height: number;
  now: number;
  ageNow: number;
  selectable: boolean;
  selected: boolean;
  onToggle(id: string): void;
}) {
  const pctText = `${Math.round((row.progress > 1 ? row.progress / 100 : row.progress) * 100)}%`;
  return (
    <div
      className={`jt-row jt-data-row ${selected ? 'is-selected' : ''}`}
      role="row"
      aria-rowindex={index + 2}
      aria-selected={selected}
      data-job-id={row.id}
      data-status={row.status}
      style={{ transform: `translateY(${start}px)`, height }}
    >
      <div className="jt-cell jt-check" role="cell">
        {selectable && (
          <input
            type="checkbox"
            className="checkbox"
            checked={selected}
            onChange={() => onToggle(row.id)}
            aria-label={`Select job ${shortId(row.id)} (${row.kind})`}
          />
        )}
      </div>
      <div className="jt-cell jt-job" role="cell">
        <Link to={`/jobs/${row.id}`} className="job-link">
          <span className="job-kind">{row.kind}</span>
          <span className="job-id mono">{shortId(row.id)}</span>
        </Link>
        <span className="job-queue">{row.queue}</span>
      </div>
      <div className="jt-cell jt-status" role="cell">
        <StatusBadge status={row.status} />
      </div>
      <div className="jt-cell jt-progress" role="cell">
        <ProgressBar value={row.progress} status={row.status} label={`Progress of job ${shortId(row.id)}`} />
        <span className="progress-text">
          <span className="mono">{pctText}</span>
          {row.progressMessage && <span className="progress-msg"> {row.progressMessage}</span>}
        </span>
      </div>
      <div className="jt-cell jt-attempts" role="cell">
        <span className="cell-label">Attempts </span>
        {row.attempt}
        {row.maxAttempts != null && <span className="muted">/{row.maxAttempts}</span>}
      </div>
      <div className="jt-cell jt-age" role="cell">
        <span className="cell-label">Age </span>
        <time dateTime={row.createdAt}>{formatAge(row.createdAt, ageNow)}</time>
      </div>
      <div className="jt-cell jt-duration" role="cell">
        <span className="cell-label">Took </span>
        {jobDuration(row.startedAt, row.finishedAt, now || Date.now())}
      </div>
    </div>
  );
});
