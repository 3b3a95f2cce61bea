import { useEffect } from 'react';
import { Link } from 'react-router-dom';
import { useQuery } from 'urql';
import { describe } from '../../lib/client';
import { useDocumentTitle } from '../../lib/hooks';
import { WorkflowRunsQuery } from '../../lib/operations';
import { EmptyState, ErrorState, LoadingState, PageHeader, StatusBadge } from '../../components/ui';

const POLL_MS = 3000;

/** Workflow runs, newest first (refreshed every few seconds; a run's own page is live). */
export function RunsPage() {
  useDocumentTitle('Workflows');
  const [result, refetch] = useQuery({ query: WorkflowRunsQuery, variables: {}, requestPolicy: 'cache-and-network' });
  const runs = result.data?.workflowRuns.edges.map((e) => e.node) ?? [];
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), POLL_MS);
    return () => clearInterval(t);
  }, [refetch]);
  return (
    <div className="page">
      <PageHeader title="Workflows" subtitle="Runs of DAGs of jobs, newest first" />
      {result.error && !result.data ? (
        <ErrorState title="Runs are not available" error={describe(result.error)} onRetry={() => refetch({ requestPolicy: 'network-only' })} />
      ) : !result.data ? (
        <LoadingState label="Loading runs…" />
      ) : runs.length === 0 ? (
        <EmptyState title="No workflow runs yet">Submit one with the submitWorkflow mutation (e.g. demo.pipeline).</EmptyState>
      ) : (
        <table className="table" aria-label="Workflow runs">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Workflow</th>
              <th scope="col">Status</th>
              <th scope="col">Progress</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.id} data-run={r.id}>
                <td>
                  <Link to={`/workflows/${r.id}`}>{r.id.slice(0, 8)}</Link>
                </td>
                <td>{r.workflow}</td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>
                  <progress max={1} value={r.progress} aria-label={`progress ${Math.round(r.progress * 100)}%`} /> {Math.round(r.progress * 100)}%
                </td>
                <td>{new Date(r.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
