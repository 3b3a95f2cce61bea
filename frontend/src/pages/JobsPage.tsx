import { useMemo } from 'react';
import { Link } from 'react-router-dom';
import { useQuery } from 'urql';
import { formatCount } from '../lib/format';
import { useDocumentTitle } from '../lib/hooks';
import { useMe } from '../lib/me';
import { JobKindsQuery } from '../lib/operations';
import { EmptyState, ErrorState, LoadingState, PageHeader } from '../components/ui';
import { MatchingActions, SelectionBar } from './jobs/BulkActions';
import { JobsFilters } from './jobs/JobsFilters';
import { JobsTable } from './jobs/JobsTable';
import { useJobBulkActions } from './jobs/useJobBulkActions';
import { useJobsFilter } from './jobs/useJobsFilter';
import { FALLBACK_POLL_MS, useJobsList } from './jobs/useJobsList';

/** The live jobs table: the parts and hooks are in ./jobs (see frontend/README.md). */
export function JobsPage() {
  useDocumentTitle('Jobs');
  const { caps } = useMe();
  const filter = useJobsFilter();
  const [kinds] = useQuery({ query: JobKindsQuery });
  const jobKinds = useMemo(() => kinds.data?.jobKinds ?? [], [kinds.data]);
  const maxAttemptsByKind = useMemo(() => Object.fromEntries(jobKinds.map((k) => [k.name, k.maxAttempts])), [jobKinds]);
  const list = useJobsList(filter.filter, filter.key, maxAttemptsByKind);
  const bulk = useJobBulkActions(list, filter.filter, filter.key);
  const { state, liveError, reload, loadMore } = list;

  return (
    <div className="page page-fill">
      <PageHeader
        title="Jobs"
        subtitle={
          <span aria-live="polite">
            {state.totalCount == null ? '…' : `${formatCount(state.totalCount)} job${state.totalCount === 1 ? '' : 's'}`}
            {filter.active ? ' matching filters' : ''}
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

      <JobsFilters filter={filter} kinds={jobKinds}>
        {caps.canWrite && filter.active && state.totalCount != null && state.totalCount > 0 && <MatchingActions total={state.totalCount} bulk={bulk} />}
      </JobsFilters>

      {caps.canWrite && bulk.selected.size > 0 && <SelectionBar bulk={bulk} />}

      {state.outside > 0 && (
        <div className="notice" role="status">
          {state.outside} job{state.outside === 1 ? '' : 's'} not shown changed.{' '}
          <button type="button" className="btn btn-ghost btn-xs" onClick={() => reload('merge')}>
            Refresh
          </button>
        </div>
      )}

      {state.loading && state.ids.length === 0 ? (
        <LoadingState label="Loading jobs…" />
      ) : state.error && state.ids.length === 0 ? (
        <ErrorState title="Could not load jobs" error={state.error} onRetry={() => reload('replace')} />
      ) : state.ids.length === 0 ? (
        <EmptyState title={filter.active ? 'No jobs match these filters' : 'No jobs yet'} icon="○">
          {filter.active ? (
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
          selected={bulk.selected}
          allSelected={bulk.allSelected}
          someSelected={bulk.someSelected}
          onToggle={bulk.toggle}
          onToggleAll={bulk.toggleAll}
          onNearEnd={loadMore}
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
            <button type="button" className="btn btn-sm" onClick={loadMore} disabled={state.loadingMore}>
              {state.loadingMore ? 'Loading…' : 'Load more'}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
