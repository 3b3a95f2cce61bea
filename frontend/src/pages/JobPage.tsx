import { useEffect, useMemo, useRef, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useQuery } from 'urql';
import { useClients, useConnection } from '../lib/ApiProvider';
import { describe } from '../lib/client';
import { formatAge, formatClock, formatDuration, formatEventData, formatTime, jobDuration, pct, resultPlaceholder, shortId } from '../lib/format';
import { useDocumentTitle, useNow } from '../lib/hooks';
import { runJobAction, type JobAction } from '../lib/jobActions';
import { JobDetailQuery, JobWaitingReasonQuery } from '../lib/operations';
import { useJobTimeline, type LiveStatus } from '../lib/useJobTimeline';
import type { TimelineEvent } from '../lib/timeline';
import { CANCELLABLE, ErrorState, FINISHED, JsonView, LoadingState, EmptyState, ProgressBar, RETRYABLE, StatusBadge } from '../components/ui';
import { useMe } from '../lib/me';
import { useToast } from '../components/Toasts';
import type { JobStatus } from '../gql/graphql';

/** Statuses in which a job waits for a worker. */
const WAITING: ReadonlySet<JobStatus> = new Set<JobStatus>(['QUEUED', 'SCHEDULED', 'RETRYING']);

export function JobPage() {
  const { id = '' } = useParams();
  useDocumentTitle(`Job ${shortId(id)}`);
  const { urql } = useClients();
  const toast = useToast();
  const { caps } = useMe();
  const [detail, refetchDetail] = useQuery({ query: JobDetailQuery, variables: { id } });
  const timeline = useJobTimeline(id);
  const now = useNow(1000);
  const [busy, setBusy] = useState<JobAction | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const job = detail.data?.job;
  const current = timeline.state.current;
  const status: JobStatus | undefined = current?.status ?? job?.status;
  const progress = current?.progress ?? job?.progress ?? 0;
  const message = current ? current.message ?? job?.progressMessage ?? null : job?.progressMessage ?? null;

  // Refresh the slower-moving details (attempts, result, error) when the state changes.
  const lastKey = useRef<string>('');
  const eventCount = timeline.state.events.filter((e) => e.type !== 'PROGRESS' && e.type !== 'LOG').length;
  useEffect(() => {
    if (!job) return;
    const key = `${status}:${eventCount}`;
    if (lastKey.current && lastKey.current !== key) refetchDetail({ requestPolicy: 'network-only' });
    lastKey.current = key;
  }, [status, eventCount, job, refetchDetail]);

  async function act(action: JobAction) {
    setBusy(action);
    setActionError(null);
    const r = await runJobAction(urql, action, id);
    setBusy(null);
    if (r.error) {
      setActionError(r.error);
      toast(`${action === 'cancel' ? 'Cancel' : 'Retry'} failed: ${r.error}`, 'error');
      return;
    }
    toast(action === 'cancel' ? 'Cancellation requested' : 'Job queued for retry', 'success');
    refetchDetail({ requestPolicy: 'network-only' });
    if (action === 'retry' || timeline.liveStatus === 'ended') timeline.resubscribe();
  }

  if (detail.fetching && !job) return <LoadingState label="Loading job…" />;
  if (detail.error && !job)
    return (
      <div className="page">
        <ErrorState title="Could not load job" error={describe(detail.error)} onRetry={() => refetchDetail({ requestPolicy: 'network-only' })} />
      </div>
    );
  if (!job)
    return (
      <div className="page">
        <EmptyState title="Job not found" icon="?">
          <p>
            No job with id <code>{id}</code>. <Link to="/jobs">Back to jobs</Link>
          </p>
        </EmptyState>
      </div>
    );

  const s = status ?? job.status;
  const p = pct(progress);

  return (
    <div className="page job-page">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/jobs">Jobs</Link> <span aria-hidden="true">/</span> <span className="mono">{shortId(job.id)}</span>
      </nav>
      <div className="job-hero card">
        <div className="job-hero-top">
          <div>
            <h1 className="job-title">
              {job.kind}{' '}
              <span className="job-title-id mono" title={job.id}>
                {job.id}
              </span>
            </h1>
            <div className="job-meta-line">
              <StatusBadge status={s} />
              <span>
                queue <strong>{job.queue}</strong>
              </span>
              <span>
                priority <strong>{job.priority.toLowerCase()}</strong>
              </span>
              <span>
                attempt <strong>{current && job ? Math.max(job.attempt, 0) : job.attempt}</strong> of {job.maxAttempts}
              </span>
              <LiveBadge status={timeline.liveStatus} error={timeline.liveError} finished={timeline.finished} />
            </div>
          </div>
          <div className="job-actions">
            {caps.canWrite && FINISHED.has(s) && (
            <Link
              className="btn"
              to={`/submit?kind=${encodeURIComponent(job.kind)}&payload=${encodeURIComponent(JSON.stringify(job.payload))}`}
              title="Open the submit form with this job's payload"
            >
              Run again…
            </Link>
            )}
            {caps.canWrite && CANCELLABLE.has(s) && (
              <button type="button" className="btn btn-danger" onClick={() => void act('cancel')} disabled={busy !== null}>
                {busy === 'cancel' ? 'Cancelling…' : 'Cancel job'}
              </button>
            )}
            {caps.canWrite && RETRYABLE.has(s) && (
              <button type="button" className="btn btn-primary" onClick={() => void act('retry')} disabled={busy !== null}>
                {busy === 'retry' ? 'Retrying…' : 'Retry job'}
              </button>
            )}
          </div>
        </div>
        <div className="job-progress">
          <div className="job-progress-row">
            <span className="job-progress-pct mono" data-testid="job-progress-pct">
              {Math.round(p)}%
            </span>
            <span className="job-progress-msg" aria-live="polite" data-testid="job-progress-message">
              {message ?? (s === 'QUEUED' ? 'Waiting for a worker…' : s === 'SCHEDULED' ? `Scheduled for ${formatTime(job.runAt ?? job.nextRunAt)}` : '')}
            </span>
          </div>
          <ProgressBar value={progress} status={s} label="Job progress" size="lg" />
          {WAITING.has(s) && !job.queueServed && (
            <p className="notice notice-warn" role="status" data-testid="no-worker-notice">
              No live worker serves queue <strong>{job.queue}</strong> with kind <strong>{job.kind}</strong>: this
              job waits, queued, until one starts (<code>conveyor worker --queues {job.queue}</code> with job modules that
              define the kind). Nothing is lost meanwhile.
            </p>
          )}
        </div>
        {actionError && (
          <p className="field-error" role="alert">
            {actionError}
          </p>
        )}
        <WaitingReason id={job.id} status={s} />
        <dl className="facts">
          <div>
            <dt>Created</dt>
            <dd>
              <time dateTime={job.createdAt} title={formatTime(job.createdAt)}>
                {formatAge(job.createdAt, now)}
              </time>
            </dd>
          </div>
          <div>
            <dt>Started</dt>
            <dd>{job.startedAt ? formatTime(job.startedAt) : '—'}</dd>
          </div>
          <div>
            <dt>Finished</dt>
            <dd>{job.finishedAt ? formatTime(job.finishedAt) : '—'}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd>{jobDuration(job.startedAt, job.finishedAt, now)}</dd>
          </div>
          <div>
            <dt>Timeout</dt>
            <dd>{formatDuration(job.timeoutSeconds * 1000)}</dd>
          </div>
          {job.nextRunAt && (
            <div>
              <dt>Next run</dt>
              <dd>{formatTime(job.nextRunAt)}</dd>
            </div>
          )}
        </dl>
      </div>

      <div className="job-grid">
        <section className="card" aria-labelledby="timeline-h">
          <div className="card-head">
            <h2 id="timeline-h">Timeline</h2>
            <span className="muted small">{timeline.state.events.length} events</span>
          </div>
          {timeline.historyError && (
            <p className="text-danger small" role="alert">
              History: {timeline.historyError}{' '}
              <button type="button" className="btn btn-ghost btn-xs" onClick={timeline.refetchHistory}>
                Retry
              </button>
            </p>
          )}
          <Timeline events={timeline.state.events} loaded={timeline.historyLoaded} />
        </section>

        <div className="job-side">
          <section className="card" aria-labelledby="attempts-h">
            <h2 id="attempts-h">Attempts</h2>
            {job.attempts.length === 0 ? (
              <p className="muted">No attempts yet.</p>
            ) : (
              <ol className="attempts">
                {job.attempts.map((a) => (
                  <li key={a.number} className={`attempt attempt-${a.status.toLowerCase()}`}>
                    <div className="attempt-head">
                      <strong>#{a.number}</strong>
                      <span className={`badge attempt-badge attempt-status-${a.status.toLowerCase()}`}>{a.status.toLowerCase().replace('_', ' ')}</span>
                      <span className="muted small">{jobDuration(a.startedAt, a.finishedAt, now)}</span>
                    </div>
                    <div className="muted small">
                      {formatTime(a.startedAt)}
                      {a.workerId && (
                        <>
                          {' · '}
                          <span className="mono">{a.workerId}</span>
                        </>
                      )}
                    </div>
                    {a.error && (
                      <div className="attempt-error">
                        <strong className="mono">{a.error.type}</strong>
                        <pre className="error-msg">{a.error.message}</pre>
                      </div>
                    )}
                  </li>
                ))}
              </ol>
            )}
          </section>
          {job.error && (
            <section className="card card-danger" aria-labelledby="error-h">
              <h2 id="error-h">Error</h2>
              <strong className="mono">{job.error.type}</strong>
              <pre className="error-msg">{job.error.message}</pre>
            </section>
          )}
          <section className="card">
            <JsonView label="Payload" value={job.payload} />
          </section>
          <section className="card">
            <JsonView label="Result" value={job.result} empty={resultPlaceholder(s)} />
          </section>
        </div>
      </div>
    </div>
  );
}

function LiveBadge({ status, error, finished }: { status: LiveStatus; error: string | null; finished: boolean }) {
  const conn = useConnection();
  if (!finished && status !== 'ended' && conn.status !== 'live' && conn.status !== 'connecting')
    return <span className="pill pill-warn">{conn.status === 'offline' ? 'offline' : 'reconnecting…'}</span>;
  if (status === 'error')
    return (
      <span className="pill pill-warn" title={error ?? undefined}>
        live updates unavailable
      </span>
    );
  if (status === 'ended' || (finished && status !== 'live')) return <span className="pill">final</span>;
  if (status === 'connecting') return <span className="pill">connecting…</span>;
  if (finished) return <span className="pill">final</span>;
  return (
    <span className="pill pill-live">
      <span className="live-dot" aria-hidden="true" /> live
    </span>
  );
}

const EVENT_LABEL: Record<string, string> = {
  SUBMITTED: 'Submitted',
  SCHEDULED: 'Scheduled',
  QUEUED: 'Queued',
  STARTED: 'Started',
  PROGRESS: 'Progress',
  LOG: 'Log',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  RETRY_SCHEDULED: 'Retry scheduled',
  TIMED_OUT: 'Timed out',
  LOST: 'Lost',
  CANCEL_REQUESTED: 'Cancel requested',
  CANCELLED: 'Cancelled',
  RETRIED: 'Retried',
  SNOOZED: 'Snoozed',
};

interface Group {
  key: string;
  first: TimelineEvent;
  last: TimelineEvent;
  count: number;
}

/** Consecutive PROGRESS events collapse into one row so the timeline stays readable. */
function groupEvents(events: TimelineEvent[]): Group[] {
  const out: Group[] = [];
  for (const e of events) {
    const prev = out[out.length - 1];
    if (prev && e.type === 'PROGRESS' && prev.last.type === 'PROGRESS') {
      prev.last = e;
      prev.count++;
    } else {
      out.push({ key: String(e.seq), first: e, last: e, count: 1 });
    }
  }
  return out;
}

function Timeline({ events, loaded }: { events: TimelineEvent[]; loaded: boolean }) {
  const groups = useMemo(() => groupEvents(events), [events]);
  if (!loaded && events.length === 0) return <LoadingState label="Loading events…" />;
  if (events.length === 0) return <p className="muted">No events yet.</p>;
  return (
    <ol className="timeline" aria-label="Job events" data-testid="timeline">
      {groups.map((g) => {
        const e = g.last;
        const data = e.data && typeof e.data === 'object' && Object.keys(e.data).length ? e.data : null;
        return (
          <li key={g.key} className={`tl-item tl-${e.type.toLowerCase()}`} data-seq={e.seq}>
            <span className="tl-dot" aria-hidden="true" />
            <div className="tl-body">
              <div className="tl-head">
                <span className="tl-type">{EVENT_LABEL[e.type] ?? e.type}</span>
                {e.type === 'PROGRESS' && <span className="mono tl-pct">{Math.round(pct(e.progress))}%</span>}
                {g.count > 1 && <span className="muted small">×{g.count} updates</span>}
                <time className="tl-time mono" dateTime={e.at}>
                  {formatClock(e.at)}
                </time>
                <span className="tl-seq mono" title="Event sequence number">
                  #{g.count > 1 ? `${g.first.seq}–${e.seq}` : e.seq}
                </span>
              </div>
              {e.message && <p className="tl-msg">{e.message}</p>}
              {data !== null && e.type !== 'PROGRESS' && <pre className="tl-data">{formatEventData(data)}</pre>}
            </div>
          </li>
        );
      })}
    </ol>
  );
}

const WAIT_POLL_MS = 2000;

/** Why a waiting job is not running (`Job.waitingReason`), re-read while it waits. */
function WaitingReason({ id, status }: { id: string; status: JobStatus }) {
  const waiting = WAITING.has(status);
  const [res, refetch] = useQuery({ query: JobWaitingReasonQuery, variables: { id }, pause: !waiting, requestPolicy: 'network-only' });
  useEffect(() => {
    if (!waiting) return;
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), WAIT_POLL_MS);
    return () => clearInterval(t);
  }, [waiting, refetch, status]);
  const reason = res.data?.job?.waitingReason;
  if (!waiting || !reason) return null;
  return (
    <section className="waiting-reason" aria-labelledby="waiting-h" data-testid="waiting-reason" data-code={reason.code}>
      <h2 id="waiting-h" className="waiting-title">
        Why isn't it running? <span className="pill mono">{reason.code}</span>
      </h2>
      <p className="waiting-message">{reason.message}</p>
      <dl className="facts facts-compact">
        {reason.until && (
          <div>
            <dt>Until</dt>
            <dd>{formatTime(reason.until)}</dd>
          </div>
        )}
        {reason.scope && (
          <div>
            <dt>Held by</dt>
            <dd className="mono">{reason.scope}</dd>
          </div>
        )}
        {reason.limit != null && (
          <div>
            <dt>Running / limit</dt>
            <dd>
              {reason.running ?? 0} / {reason.limit}
            </dd>
          </div>
        )}
        {reason.ahead != null && (
          <div>
            <dt>Jobs ahead</dt>
            <dd>{reason.aheadExact ? reason.ahead.toLocaleString() : `${reason.ahead.toLocaleString()}+`}</dd>
          </div>
        )}
      </dl>
      {reason.holders.length > 0 && (
        <p className="small">
          Holding the slots:{' '}
          {reason.holders.map((h) => (
            <Link key={h} to={`/jobs/${h}`} className="mono holder-link">
              {shortId(h)}
            </Link>
          ))}
        </p>
      )}
    </section>
  );
}
