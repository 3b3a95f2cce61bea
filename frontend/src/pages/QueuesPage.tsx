import { useEffect, useMemo, useState } from 'react';
import { useMutation, useQuery, useSubscription } from 'urql';
import { describe } from '../lib/client';
import { formatAge, formatDuration, ageMs } from '../lib/format';
import { useDocumentTitle, useNow } from '../lib/hooks';
import { PauseQueueMutation, QueuesQuery, QueueStatsSubscription, ResumeQueueMutation, WorkersQuery } from '../lib/operations';
import { useMe } from '../lib/me';
import { useToast } from '../components/Toasts';
import type { QueueStatsFieldsFragment, QueueStatsSubscription as QueueStatsResult } from '../gql/graphql';
import { EmptyState, ErrorState, LoadingState, PageHeader, Sparkline } from '../components/ui';

const HISTORY = 60;
const INTERVAL_S = 2;

interface Series {
  latest: QueueStatsFieldsFragment;
  completed: number[];
  failed: number[];
  waiting: number[];
}

type SeriesMap = Record<string, Series>;

export function addSample(prev: SeriesMap, stats: readonly QueueStatsFieldsFragment[], max = HISTORY): SeriesMap {
  const next: SeriesMap = {};
  for (const s of stats) {
    const p = prev[s.queue];
    const push = (arr: number[] | undefined, v: number) => [...(arr ?? []), v].slice(-max);
    next[s.queue] = {
      latest: s,
      completed: push(p?.completed, s.completedPerMinute),
      failed: push(p?.failed, s.failedPerMinute),
      waiting: push(p?.waiting, s.waiting),
    };
  }
  return next;
}

export function QueuesPage() {
  useDocumentTitle('Queues & workers');
  const [initial, refetchQueues] = useQuery({ query: QueuesQuery });
  const snapshot = useMemo(() => (initial.data ? addSample({}, initial.data.queues) : {}), [initial.data]);
  // The sparklines' history: the snapshot, then each live sample (urql folds them in).
  const [live] = useSubscription(
    { query: QueueStatsSubscription, variables: { interval: INTERVAL_S } },
    (prev: SeriesMap | undefined, data: QueueStatsResult) => addSample(prev ?? snapshot, data.queueStats),
  );
  const series = live.data ?? snapshot;

  const { me } = useMe();
  const queues = Object.values(series).sort((a, b) => a.latest.queue.localeCompare(b.latest.queue));
  const liveOk = !!live.data && !live.error;
  const err = initial.error && live.error ? describe(initial.error) : null;

  return (
    <div className="page">
      <PageHeader
        title="Queues & workers"
        subtitle={
          <span aria-live="polite">
            {liveOk ? (
              <span className="text-live">live · every {INTERVAL_S}s</span>
            ) : live.error ? (
              <span className="text-warn" title={describe(live.error)}>
                live stats unavailable{initial.data ? ' (showing a snapshot)' : ''}
              </span>
            ) : (
              'connecting…'
            )}
          </span>
        }
      />
      <section aria-labelledby="queues-h" className="section">
        <h2 id="queues-h" className="section-title">
          Queues
        </h2>
        {me?.role === 'SUBMITTER' && (
          <p className="notice small" data-testid="own-jobs-only">
            These counts cover only the jobs you submitted: a submitter sees its own jobs. Admins, operators and
            viewers see every job of the tenant.
          </p>
        )}
        {queues.length === 0 ? (
          err ? (
            <ErrorState title="Queue stats are not available" error={err} onRetry={() => refetchQueues({ requestPolicy: 'network-only' })} />
          ) : initial.fetching || (!initial.data && !live.data) ? (
            <LoadingState label="Loading queues…" />
          ) : (
            <EmptyState title="No queues yet" icon="≡">
              <p>Queues appear once jobs are submitted to them.</p>
            </EmptyState>
          )
        ) : (
          <div className="queue-grid">
            {queues.map((q) => (
              <QueueCard key={q.latest.queue} series={q} />
            ))}
          </div>
        )}
      </section>
      <Workers tick={live.data} />
    </div>
  );
}

function PauseToggle({ queue, paused }: { queue: string; paused: boolean }) {
  const { caps } = useMe();
  const toast = useToast();
  const [, pause] = useMutation(PauseQueueMutation);
  const [, resume] = useMutation(ResumeQueueMutation);
  // What this toggle last set, until the live stats agree.
  const [pending, setPending] = useState<boolean | null>(null);
  const shown = pending ?? paused;
  if (!caps.canOperate) return null;
  async function toggle() {
    const want = !shown;
    setPending(want);
    const res = want ? await pause({ queue }) : await resume({ queue });
    const data = res.data;
    const r = !data ? null : 'pauseQueue' in data ? data.pauseQueue : 'resumeQueue' in data ? data.resumeQueue : null;
    if (res.error || !r || r.__typename !== 'QueuePause') {
      setPending(null);
      toast(`Could not ${want ? 'pause' : 'resume'} ${queue}: ${res.error ? describe(res.error) : r && 'message' in r ? r.message : 'no answer'}`, 'error');
      return;
    }
    toast(want ? `Queue ${queue} paused: nothing new starts` : `Queue ${queue} resumed`, 'success');
  }
  return (
    <button type="button" className={`btn btn-sm ${shown ? 'btn-primary' : ''}`} onClick={() => void toggle()} aria-pressed={shown} data-testid={`queue-toggle-${queue}`}>
      {shown ? 'Resume' : 'Pause'}
    </button>
  );
}

function QueueCard({ series }: { series: Series }) {
  const s = series.latest;
  const oldest = s.oldestWaitingSeconds;
  return (
    <article className="card queue-card" aria-labelledby={`q-${s.queue}`} data-queue={s.queue} data-paused={s.paused ? 'true' : 'false'}>
      <div className="card-head">
        <h3 id={`q-${s.queue}`} className="mono">
          {s.queue}
        </h3>
        {s.paused && (
          <span className="pill pill-warn" title={s.pausedBy ? `paused by ${s.pausedBy}` : 'paused'}>
            paused
          </span>
        )}
        {s.running > 0 && <span className="pill pill-live">{s.running} running</span>}
        <PauseToggle key={String(s.paused)} queue={s.queue} paused={s.paused} />
      </div>
      <dl className="stats">
        <div>
          <dt>Waiting</dt>
          <dd className="stat-big">{s.waiting.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Running</dt>
          <dd className="stat-big">{s.running.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Scheduled</dt>
          <dd className="stat-big">{s.scheduled.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Failed</dt>
          <dd className={`stat-big ${s.failed > 0 ? 'text-danger' : ''}`}>{s.failed.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Oldest waiting</dt>
          <dd className={oldest != null && oldest > 60 ? 'text-warn' : ''}>{oldest == null ? '—' : formatDuration(oldest * 1000)}</dd>
        </div>
        <div>
          <dt>Failed / min</dt>
          <dd className={s.failedPerMinute > 0 ? 'text-danger' : ''}>{s.failedPerMinute}</dd>
        </div>
      </dl>
      <div className="spark-row">
        <div>
          <div className="spark-label">
            Throughput <strong>{s.completedPerMinute}</strong>/min
          </div>
          <Sparkline values={series.completed} label={`${s.queue} completed per minute`} width={140} />
        </div>
        <div>
          <div className="spark-label">
            Depth <strong>{s.waiting}</strong>
          </div>
          <Sparkline values={series.waiting} label={`${s.queue} waiting jobs`} width={140} />
        </div>
      </div>
    </article>
  );
}

/** Workers, refreshed with every live `queueStats` sample (`tick`): as live as the queues,
 * with no timer of its own. */
function Workers({ tick }: { tick: unknown }) {
  const [res, refetch] = useQuery({ query: WorkersQuery });
  const now = useNow(1000);
  useEffect(() => {
    if (tick) refetch({ requestPolicy: 'network-only' });
  }, [tick, refetch]);
  const workers = res.data?.workers ?? [];
  return (
    <section aria-labelledby="workers-h" className="section">
      <h2 id="workers-h" className="section-title">
        Workers {res.data && <span className="count-pill">{workers.length}</span>}
      </h2>
      {res.error && !res.data ? (
        <ErrorState title="Workers are not available" error={describe(res.error)} onRetry={() => refetch({ requestPolicy: 'network-only' })} />
      ) : !res.data ? (
        <LoadingState label="Loading workers…" />
      ) : workers.length === 0 ? (
        <EmptyState title="No workers online" icon="○">
          <p>
            Start one with <code>conveyor worker</code>. Queued jobs wait until a worker picks them up.
          </p>
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table workers-table">
            <caption className="sr-only">Workers and their heartbeats</caption>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Queues</th>
                <th scope="col">Running</th>
                <th scope="col">Heartbeat</th>
                <th scope="col">Up</th>
              </tr>
            </thead>
            <tbody>
              {workers.map((w) => {
                const hb = ageMs(w.lastHeartbeatAt, now) ?? 0;
                const health = hb > 90_000 ? 'dead' : hb > 30_000 ? 'stale' : 'ok';
                return (
                  <tr key={w.id} data-worker-id={w.id}>
                    <td>
                      <div className="mono">{w.id}</div>
                      <div className="muted small">
                        {w.host} · pid {w.pid}
                      </div>
                    </td>
                    <td>
                      {w.queues.map((q) => (
                        <span key={q} className="pill">
                          {q}
                        </span>
                      ))}
                    </td>
                    <td>
                      <span className="mono">
                        {w.runningJobs}/{w.concurrency}
                      </span>
                      <div className="capacity" aria-hidden="true">
                        <div className="capacity-fill" style={{ width: `${Math.min(100, (w.runningJobs / Math.max(1, w.concurrency)) * 100)}%` }} />
                      </div>
                    </td>
                    <td>
                      <span className={`hb hb-${health}`}>
                        <span className="hb-dot" aria-hidden="true" />
                        {formatAge(w.lastHeartbeatAt, now)}
                        {health !== 'ok' && <span className="sr-only"> ({health})</span>}
                      </span>
                    </td>
                    <td>{formatDuration(ageMs(w.startedAt, now))}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
