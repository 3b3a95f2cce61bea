import { useEffect, useMemo, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useMutation, useQuery, useSubscription } from 'urql';
import { describe } from '../../lib/client';
import { useDocumentTitle } from '../../lib/hooks';
import {
  CancelWorkflowRunMutation,
  RetryWorkflowRunMutation,
  StepJobsQuery,
  WorkflowEventsSubscription,
  WorkflowRunQuery,
} from '../../lib/operations';
import { DagView, type DagNode } from '../../components/DagView';
import type { JobStatus, WorkflowRunQuery as RunData } from '../../gql/graphql';
import { ErrorState, LoadingState, PageHeader, StatusBadge } from '../../components/ui';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** A run: its DAG (dagre layout), live step states via `workflowEvents`, a map as counts with
 * a drill-down into its item jobs, and cancel / retry. */
export function RunPage() {
  const { id = '' } = useParams();
  useDocumentTitle(`Run ${id.slice(0, 8)}`);
  const [run, refetch] = useQuery({ query: WorkflowRunQuery, variables: { id } });
  const data = run.data?.workflowRun;
  // Every event re-reads the run (counts, jobs); the stream itself is gapless by seq. The
  // server completes the stream after a terminal event: a retried run (RUNNING again) is
  // followed by a new subscription, which starts with a snapshot.
  const ended = !data || TERMINAL.has(data.status);
  const [live] = useSubscription(
    { query: WorkflowEventsSubscription, variables: { runId: id }, pause: ended },
    (prev: number | undefined, ev) => ev.workflowEvents.seq ?? prev ?? 0,
  );
  const seq = live.data;
  useEffect(() => {
    if (seq !== undefined) refetch({ requestPolicy: 'network-only' });
  }, [seq, refetch]);
  const [selected, setSelected] = useState<string | null>(null);
  const [cancelState, cancel] = useMutation(CancelWorkflowRunMutation);
  const [retryState, retry] = useMutation(RetryWorkflowRunMutation);
  const [message, setMessage] = useState<string | null>(null);

  const edges = useMemo(
    () => run.data?.workflows.find((w) => w.name === data?.workflow)?.edges ?? [],
    [run.data, data?.workflow],
  );
  const nodes: DagNode[] = useMemo(
    () =>
      (data?.steps ?? []).map((s) => ({
        key: s.key,
        label: s.key,
        status: s.status,
        sub: s.isMap
          ? `map · ${s.succeeded}/${s.expected ?? '?'} done${s.failed ? `, ${s.failed} failed` : ''}`
          : s.kind,
      })),
    [data?.steps],
  );

  if (run.error && !data) return <ErrorState title="Run not available" error={describe(run.error)} onRetry={() => refetch({ requestPolicy: 'network-only' })} />;
  if (!data) return run.fetching ? <LoadingState label="Loading run…" /> : <ErrorState title="No such run" error="It does not exist or is not yours." />;

  const step = data.steps.find((s) => s.key === selected) ?? null;
  const act = async (which: 'cancel' | 'retry') => {
    const res = which === 'cancel' ? await cancel({ id }) : await retry({ id });
    const answer = which === 'cancel' ? res.data && 'cancelWorkflowRun' in res.data ? res.data.cancelWorkflowRun : null : res.data && 'retryWorkflowRun' in res.data ? res.data.retryWorkflowRun : null;
    if (res.error) setMessage(describe(res.error));
    else if (answer && 'message' in answer) setMessage(answer.message);
    else setMessage(null);
    refetch({ requestPolicy: 'network-only' });
  };

  return (
    <div className="page">
      <PageHeader
        title={`${data.workflow} · ${data.id.slice(0, 8)}`}
        subtitle={
          <span aria-live="polite">
            <StatusBadge status={data.status} /> {Math.round(data.progress * 100)}% · generation {data.generation}
            {live.error ? <span className="text-warn"> · live updates unavailable</span> : !TERMINAL.has(data.status) ? <span className="text-live"> · live</span> : null}
          </span>
        }
        actions={
          <>
            <button type="button" className="btn" disabled={TERMINAL.has(data.status) || cancelState.fetching} onClick={() => void act('cancel')}>
              Cancel run
            </button>
            <button type="button" className="btn" disabled={!(data.status === 'FAILED' || data.status === 'CANCELLED') || retryState.fetching} onClick={() => void act('retry')}>
              Retry failed steps
            </button>
          </>
        }
      />
      {message && (
        <p role="alert" className="text-warn">
          {message}
        </p>
      )}
      <progress className="run-progress" max={1} value={data.progress} aria-label="run progress" />
      {data.error && <p className="text-warn">{data.error.message}</p>}
      <section className="section" aria-labelledby="dag-h">
        <h2 id="dag-h" className="section-title">
          Steps
        </h2>
        <DagView nodes={nodes} edges={edges} selected={selected} onSelect={setSelected} />
      </section>
      {step && <StepDetail runId={id} step={step} />}
      <p>
        <Link to="/workflows">All runs</Link>
      </p>
    </div>
  );
}

type StepInfo = NonNullable<RunData['workflowRun']>['steps'][number];

function StepDetail({ runId, step }: { runId: string; step: StepInfo }) {
  const [status, setStatus] = useState<string | null>(null);
  const [jobs] = useQuery({
    query: StepJobsQuery,
    variables: { id: runId, status: status ? [status as JobStatus] : null },
    pause: !step.isMap,
    requestPolicy: 'network-only',
  });
  const items = jobs.data?.workflowRun?.steps.find((s) => s.key === step.key)?.jobs ?? [];
  return (
    <section className="section" aria-labelledby="step-h">
      <h2 id="step-h" className="section-title">
        Step {step.key} <StatusBadge status={step.status} />
      </h2>
      <p>
        Kind <code>{step.kind}</code>
        {step.error ? <span className="text-warn"> · {step.error.message}</span> : null}
      </p>
      {step.isMap ? (
        <>
          <div className="chips" role="group" aria-label="Items by status">
            <button type="button" className={`chip${status === null ? ' active' : ''}`} onClick={() => setStatus(null)}>
              all {step.expected ?? '?'}
            </button>
            {step.counts.map((c) => (
              <button key={c.status} type="button" className={`chip${status === c.status ? ' active' : ''}`} data-count={c.status} onClick={() => setStatus(c.status)}>
                {c.status.toLowerCase()} {c.count}
              </button>
            ))}
          </div>
          <ul className="map-items" aria-label="Item jobs">
            {items.map((j) => (
              <li key={j.id}>
                <Link to={`/jobs/${j.id}`}>item {j.mapIndex}</Link> <StatusBadge status={j.status} />
              </li>
            ))}
          </ul>
        </>
      ) : step.job ? (
        <p>
          Job <Link to={`/jobs/${step.job.id}`}>{step.job.id.slice(0, 8)}</Link> <StatusBadge status={step.job.status} />
        </p>
      ) : (
        <p>No job yet.</p>
      )}
    </section>
  );
}
