import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import { useClients, useConnection } from '../lib/ApiProvider';
import { formatAge, formatCount, shortId } from '../lib/format';
import { useDocumentTitle, useNow, useOnReconnect } from '../lib/hooks';
import { runBulkJobAction, runJobAction } from '../lib/jobActions';
import { summarize } from '../lib/bulk';
import { FailedJobsQuery, JobUpdatesSubscription, RetryJobsMutation } from '../lib/operations';
import { emptyPagedList, pagingReducer, type FetchPage, type PagedList, type PagingAction } from '../lib/paging';
import { queryPage, usePagedList } from '../lib/usePaged';
import type { FailedJobsQuery as FailedJobsResult } from '../gql/graphql';
import { EmptyState, ErrorState, LoadingState, PageHeader } from '../components/ui';
import { useMe } from '../lib/me';
import { useToast } from '../components/Toasts';

type FailedJob = FailedJobsResult['jobs']['edges'][number]['node'];
const PAGE = 200;
const MAX_LOADED = 5000;
const EMPTY = emptyPagedList<FailedJob>();

function deadLetterReducer(state: PagedList<FailedJob>, action: PagingAction<FailedJob>): PagedList<FailedJob> {
  return pagingReducer(state, action, (job: FailedJob) => job);
}

export interface ErrorGroup {
  errorType: string;
  jobs: FailedJob[];
  latest: FailedJob;
}
export interface KindGroup {
  kind: string;
  total: number;
  errors: ErrorGroup[];
}

export function groupFailures(jobs: FailedJob[]): KindGroup[] {
  const byKind = new Map<string, Map<string, FailedJob[]>>();
  for (const j of jobs) {
    const type = j.error?.type ?? 'Unknown error';
    let m = byKind.get(j.kind);
    if (!m) byKind.set(j.kind, (m = new Map<string, FailedJob[]>()));
    const list = m.get(type);
    if (list) list.push(j);
    else m.set(type, [j]);
  }
  const time = (j: FailedJob) => Date.parse(j.finishedAt ?? j.createdAt) || 0;
  return [...byKind.entries()]
    .map(([kind, m]) => {
      const errors = [...m.entries()]
        .map(([errorType, list]) => {
          const sorted = list.slice().sort((a, b) => time(b) - time(a));
          return { errorType, jobs: sorted, latest: sorted[0]! };
        })
        .sort((a, b) => b.jobs.length - a.jobs.length);
      return { kind, total: errors.reduce((n, e) => n + e.jobs.length, 0), errors };
    })
    .sort((a, b) => b.total - a.total);
}

export function DeadLetterPage() {
  useDocumentTitle('Dead letter');
  const { urql } = useClients();
  const connection = useConnection();
  const toast = useToast();
  const { caps } = useMe();
  const now = useNow(5000);
  const [busyKey, setBusyKey] = useState<string | null>(null);
  const fetchFailed = useCallback<FetchPage<FailedJob>>(
    (first, after) => queryPage(urql, FailedJobsQuery, { filter: { status: ['FAILED'] }, first, after }, (d) => d.jobs),
    [urql],
  );
  // Every failed job up to MAX_LOADED, so that groups are complete; a refresh swaps them
  // in when all have arrived.
  const { state, dispatch, reload } = usePagedList<FailedJob, PagedList<FailedJob>>(fetchFailed, deadLetterReducer, EMPTY, {
    pageSize: PAGE,
    leadingRows: MAX_LOADED,
  });
  const jobs = useMemo(() => state.ids.flatMap((id) => state.rows.get(id) ?? []), [state.ids, state.rows]);
  const { totalCount, error } = state;

  useOnReconnect(connection.reconnects, () => reload('refresh'));

  // New failures arrive live; reload (debounced) to pick up their error details.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const sub = urql.subscription(JobUpdatesSubscription, { filter: { status: ['FAILED'] } }).subscribe((res) => {
      if (res.data?.jobUpdates?.status === 'FAILED') {
        clearTimeout(timer);
        timer = setTimeout(() => reload('refresh'), 800);
      }
    });
    return () => {
      clearTimeout(timer);
      sub.unsubscribe();
    };
  }, [urql, reload]);

  const groups = useMemo(() => groupFailures(jobs), [jobs]);

  function removeJobs(ids: string[]) {
    dispatch({ type: 'remove', ids });
  }

  async function retryIds(key: string, ids: string[]) {
    setBusyKey(key);
    const outcome = await runBulkJobAction(urql, 'retry', ids);
    setBusyKey(null);
    removeJobs(outcome.ok.map((j) => j.id));
    toast(summarize('Retried', outcome), outcome.failed.length ? 'error' : 'success');
  }

  async function retryOne(id: string) {
    setBusyKey(id);
    const r = await runJobAction(urql, 'retry', id);
    setBusyKey(null);
    if (r.error) toast(`Retry failed: ${r.error}`, 'error');
    else {
      removeJobs([id]);
      toast('Job queued for retry', 'success');
    }
  }

  async function retryKind(kind: string, ids: string[]) {
    // Bulk mutation when the API has it; otherwise one retry per job.
    setBusyKey(`kind:${kind}`);
    const res = await urql.mutation(RetryJobsMutation, { filter: { status: ['FAILED'], kind: [kind] } }).toPromise();
    setBusyKey(null);
    if (res.data?.retryJobs) {
      toast(`Retried ${res.data.retryJobs.count} ${kind} job${res.data.retryJobs.count === 1 ? '' : 's'}`, 'success');
      removeJobs(ids);
      reload('refresh');
      return;
    }
    await retryIds(`kind:${kind}`, ids);
  }

  async function retryAll() {
    setBusyKey('all');
    const res = await urql.mutation(RetryJobsMutation, { filter: { status: ['FAILED'] } }).toPromise();
    setBusyKey(null);
    if (res.data?.retryJobs) {
      toast(`Retried ${res.data.retryJobs.count} failed job${res.data.retryJobs.count === 1 ? '' : 's'}`, 'success');
      removeJobs(state.ids);
      reload('refresh');
      return;
    }
    await retryIds('all', state.ids);
  }

  const loadedCount = jobs.length;

  return (
    <div className="page">
      <PageHeader
        title="Dead letter"
        subtitle={
          totalCount == null
            ? 'Jobs that used up their attempts, grouped by kind and error.'
            : `${formatCount(totalCount)} failed job${totalCount === 1 ? '' : 's'}${loadedCount < totalCount ? ` (showing the newest ${loadedCount.toLocaleString()})` : ''}, grouped by kind and error.`
        }
        actions={
          caps.canWrite &&
          loadedCount > 0 && (
            <button type="button" className="btn btn-primary" onClick={() => void retryAll()} disabled={busyKey !== null}>
              {busyKey === 'all' ? 'Retrying…' : `Retry all ${formatCount(totalCount ?? loadedCount)}`}
            </button>
          )
        }
      />
      {state.loading && !loadedCount ? (
        <LoadingState label="Loading failed jobs…" />
      ) : error && !loadedCount ? (
        <ErrorState title="Could not load failed jobs" error={error} onRetry={() => reload('replace')} />
      ) : groups.length === 0 ? (
        <EmptyState title="No failed jobs" icon="✓">
          <p>Jobs that fail every attempt land here, grouped by error, ready to retry.</p>
        </EmptyState>
      ) : (
        <div className="dl-groups">
          {groups.map((g) => (
            <section key={g.kind} className="card dl-kind" aria-labelledby={`dl-${g.kind}`}>
              <div className="card-head">
                <h2 id={`dl-${g.kind}`}>
                  <span className="mono">{g.kind}</span> <span className="count-pill">{g.total}</span>
                </h2>
                {caps.canWrite && (
                <button
                  type="button"
                  className="btn btn-sm"
                  onClick={() => void retryKind(g.kind, g.errors.flatMap((e) => e.jobs.map((j) => j.id)))}
                  disabled={busyKey !== null}
                >
                  {busyKey === `kind:${g.kind}` ? 'Retrying…' : `Retry all ${g.kind}`}
                </button>
                )}
              </div>
              <ul className="dl-errors">
                {g.errors.map((eg) => {
                  const key = `${g.kind}:${eg.errorType}`;
                  return (
                    <li key={eg.errorType} className="dl-error">
                      <div className="dl-error-head">
                        <div className="dl-error-title">
                          <strong className="mono">{eg.errorType}</strong>
                          <span className="count-pill count-danger">{eg.jobs.length}</span>
                          <span className="muted small">last {formatAge(eg.latest.finishedAt ?? eg.latest.createdAt, now)}</span>
                        </div>
                        {caps.canWrite && (
                        <button
                          type="button"
                          className="btn btn-sm"
                          onClick={() => void retryIds(key, eg.jobs.map((j) => j.id))}
                          disabled={busyKey !== null}
                          aria-label={`Retry ${eg.jobs.length} ${g.kind} job${eg.jobs.length === 1 ? '' : 's'} failing with ${eg.errorType}`}
                        >
                          {busyKey === key ? 'Retrying…' : `Retry ${eg.jobs.length}`}
                        </button>
                        )}
                      </div>
                      {eg.latest.error?.message && <pre className="error-msg">{eg.latest.error.message}</pre>}
                      <details className="dl-jobs">
                        <summary>
                          {eg.jobs.length} job{eg.jobs.length === 1 ? '' : 's'}
                        </summary>
                        <ul>
                          {eg.jobs.slice(0, 200).map((j) => (
                            <li key={j.id} className="dl-job" data-job-id={j.id}>
                              <Link to={`/jobs/${j.id}`} className="mono">
                                {shortId(j.id)}
                              </Link>
                              <span className="muted small">
                                {j.attempt}/{j.maxAttempts} attempts · failed {formatAge(j.finishedAt ?? j.createdAt, now)}
                              </span>
                              <span className="dl-job-msg" title={j.error?.message}>
                                {j.error?.message}
                              </span>
                              {caps.canWrite && (
                              <button
                                type="button"
                                className="btn btn-xs"
                                onClick={() => void retryOne(j.id)}
                                disabled={busyKey !== null}
                                aria-label={`Retry job ${shortId(j.id)}`}
                              >
                                {busyKey === j.id ? '…' : 'Retry'}
                              </button>
                              )}
                            </li>
                          ))}
                          {eg.jobs.length > 200 && <li className="muted small">…and {eg.jobs.length - 200} more</li>}
                        </ul>
                      </details>
                    </li>
                  );
                })}
              </ul>
            </section>
          ))}
        </div>
      )}
    </div>
  );
}
