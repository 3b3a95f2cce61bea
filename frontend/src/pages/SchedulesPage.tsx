import { useEffect, useState, type FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { describe } from '../lib/client';
import { formatAge, formatTime, shortId } from '../lib/format';
import { useDocumentTitle, useNow } from '../lib/hooks';
import { useMe } from '../lib/me';
import {
  CreateScheduleMutation,
  DeleteScheduleMutation,
  JobKindsQuery,
  PauseScheduleMutation,
  ResumeScheduleMutation,
  SchedulesQuery,
  TriggerScheduleMutation,
} from '../lib/operations';
import type { ScheduleFieldsFragment } from '../gql/graphql';
import { EmptyState, ErrorState, LoadingState, PageHeader, StatusBadge } from '../components/ui';
import { useToast } from '../components/Toasts';

const POLL_MS = 3000;

/** "every 30 s", "0 3 * * * (Europe/Berlin)". */
export function describeTiming(s: Pick<ScheduleFieldsFragment, 'cron' | 'everySeconds' | 'timezone'>): string {
  if (s.cron) return `${s.cron}${s.timezone !== 'UTC' ? ` (${s.timezone})` : ' (UTC)'}`;
  return `every ${s.everySeconds ?? '?'} s`;
}

export function SchedulesPage() {
  useDocumentTitle('Schedules');
  const { caps } = useMe();
  const [res, refetch] = useQuery({ query: SchedulesQuery, requestPolicy: 'cache-and-network' });
  const [creating, setCreating] = useState(false);
  const now = useNow(1000);
  // Next runs and last outcomes move on by themselves: poll while the page is open.
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), POLL_MS);
    return () => clearInterval(t);
  }, [refetch]);
  const schedules = res.data?.schedules ?? [];
  return (
    <div className="page">
      <PageHeader
        title="Schedules"
        subtitle="Recurring jobs: their next runs, their last runs and how they ended."
        actions={
          caps.canOperate && (
            <button type="button" className="btn btn-primary" onClick={() => setCreating((c) => !c)} aria-expanded={creating}>
              {creating ? 'Close' : 'New schedule'}
            </button>
          )
        }
      />
      {creating && <CreateSchedule onDone={() => { setCreating(false); refetch({ requestPolicy: 'network-only' }); }} />}
      {res.error && !res.data ? (
        <ErrorState title="Schedules are not available" error={describe(res.error)} onRetry={() => refetch({ requestPolicy: 'network-only' })} />
      ) : !res.data ? (
        <LoadingState label="Loading schedules…" />
      ) : schedules.length === 0 ? (
        <EmptyState title="No schedules yet" icon="⏱">
          <p>
            Declare one next to a kind (<code>@job_kind(..., schedules=[schedule(...)])</code>) or create one here.
          </p>
        </EmptyState>
      ) : (
        <div className="schedule-list">
          {schedules.map((s) => (
            <ScheduleCard key={s.id} schedule={s} now={now} onChange={() => refetch({ requestPolicy: 'network-only' })} />
          ))}
        </div>
      )}
    </div>
  );
}

function ScheduleCard({ schedule: s, now, onChange }: { schedule: ScheduleFieldsFragment; now: number; onChange: () => void }) {
  const { caps } = useMe();
  const toast = useToast();
  const [, pause] = useMutation(PauseScheduleMutation);
  const [, resume] = useMutation(ResumeScheduleMutation);
  const [, trigger] = useMutation(TriggerScheduleMutation);
  const [, remove] = useMutation(DeleteScheduleMutation);
  const [busy, setBusy] = useState(false);

  async function run(label: string, call: () => Promise<{ error?: CombinedError; data?: Record<string, { __typename: string; message?: string } | null> | null }>) {
    setBusy(true);
    const r = await call();
    setBusy(false);
    const answer = r.data ? Object.values(r.data)[0] : null;
    if (r.error || !answer || 'message' in answer) {
      toast(`${label} failed: ${r.error ? describe(r.error) : answer?.message ?? 'no answer'}`, 'error');
      return;
    }
    toast(`${label}: ${s.name}`, 'success');
    onChange();
  }

  return (
    <article className="card schedule-card" aria-labelledby={`s-${s.id}`} data-schedule={s.name} data-paused={s.paused ? 'true' : 'false'}>
      <div className="card-head">
        <h2 id={`s-${s.id}`} className="schedule-name">
          {s.name}
        </h2>
        <span className="pill mono">{s.kind}</span>
        {s.source === 'CODE' && (
          <span className="pill" title="Defined in code: change it there">
            code
          </span>
        )}
        {s.paused && <span className="pill pill-warn">paused</span>}
      </div>
      <dl className="facts facts-compact">
        <div>
          <dt>When</dt>
          <dd className="mono">{describeTiming(s)}</dd>
        </div>
        <div>
          <dt>Next runs</dt>
          <dd data-testid="next-runs">
            {s.paused ? '— (paused)' : s.nextFireTimes.length === 0 ? '—' : s.nextFireTimes.map((t) => <div key={t}>{formatTime(t)}</div>)}
          </dd>
        </div>
        <div>
          <dt>Last run</dt>
          <dd>{s.lastFireAt ? formatAge(s.lastFireAt, now) : 'never'}</dd>
        </div>
        {s.skippedFires > 0 && (
          <div>
            <dt>Skipped</dt>
            <dd className="text-warn">{s.skippedFires}</dd>
          </div>
        )}
      </dl>
      {s.recentFires.length > 0 && (
        <table className="table fires-table">
          <caption className="sr-only">Last runs of {s.name}</caption>
          <thead>
            <tr>
              <th scope="col">Fire time</th>
              <th scope="col">Job</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {s.recentFires.map((f) => (
              <tr key={f.fireAt} data-fire={f.fireAt}>
                <td>
                  {formatTime(f.fireAt)}
                  {f.manual && <span className="pill">manual</span>}
                </td>
                <td>{f.jobId ? <Link to={`/jobs/${f.jobId}`} className="mono">{shortId(f.jobId)}</Link> : '—'}</td>
                <td>{f.jobStatus ? <StatusBadge status={f.jobStatus} /> : <span className="text-danger small">{f.error ?? 'pruned'}</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {caps.canOperate && (
        <div className="schedule-actions">
          {s.paused ? (
            <button type="button" className="btn btn-sm btn-primary" disabled={busy} onClick={() => void run('Resumed', () => resume({ id: s.id }))}>
              Resume
            </button>
          ) : (
            <button type="button" className="btn btn-sm" disabled={busy} onClick={() => void run('Paused', () => pause({ id: s.id }))}>
              Pause
            </button>
          )}
          <button type="button" className="btn btn-sm" disabled={busy} onClick={() => void run('Triggered', () => trigger({ id: s.id }))}>
            Run now
          </button>
          {s.source === 'API' && (
            <button type="button" className="btn btn-sm btn-danger" disabled={busy} onClick={() => void run('Deleted', () => remove({ id: s.id }))}>
              Delete
            </button>
          )}
        </div>
      )}
    </article>
  );
}

function CreateSchedule({ onDone }: { onDone: () => void }) {
  const toast = useToast();
  const [kinds] = useQuery({ query: JobKindsQuery });
  const [, create] = useMutation(CreateScheduleMutation);
  const [kind, setKind] = useState('');
  const [name, setName] = useState('');
  const [timing, setTiming] = useState<'cron' | 'every'>('cron');
  const [cron, setCron] = useState('*/5 * * * *');
  const [every, setEvery] = useState('60');
  const [timezone, setTimezone] = useState('UTC');
  const [input, setInput] = useState('{}');
  const [error, setError] = useState<string | null>(null);
  const names = kinds.data?.jobKinds.map((k) => k.name) ?? [];

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    let payload: unknown;
    try {
      payload = JSON.parse(input || '{}');
    } catch {
      setError('Input is not valid JSON');
      return;
    }
    const res = await create({
      input: {
        kind: kind || names[0] || '',
        name: name || null,
        input: payload,
        cron: timing === 'cron' ? cron : null,
        everySeconds: timing === 'every' ? Number(every) : null,
        timezone,
      },
    });
    const r = res.data?.createSchedule;
    if (res.error || !r) {
      setError(res.error ? describe(res.error) : 'No answer');
      return;
    }
    if (r.__typename !== 'Schedule') {
      const details = 'fieldErrors' in r && r.fieldErrors ? r.fieldErrors.map((f) => `${f.path.join('.')}: ${f.message}`).join('; ') : '';
      setError(`${'message' in r ? r.message : 'Refused'}${details ? ` (${details})` : ''}`);
      return;
    }
    toast(`Schedule ${r.name} created`, 'success');
    onDone();
  }

  return (
    <form className="card schedule-form" onSubmit={(e) => void submit(e)} aria-label="New schedule">
      <div className="form-grid">
        <label>
          Kind
          <select value={kind || names[0] || ''} onChange={(e) => setKind(e.target.value)}>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="generated if empty" />
        </label>
        <fieldset className="timing-choice">
          <legend>Timing</legend>
          <label>
            <input type="radio" name="timing" checked={timing === 'cron'} onChange={() => setTiming('cron')} /> Cron
          </label>
          <label>
            <input type="radio" name="timing" checked={timing === 'every'} onChange={() => setTiming('every')} /> Every N seconds
          </label>
        </fieldset>
        {timing === 'cron' ? (
          <label>
            Cron expression
            <input className="mono" value={cron} onChange={(e) => setCron(e.target.value)} aria-describedby="cron-help" />
            <span id="cron-help" className="muted small">
              5 fields, or 6 with seconds first
            </span>
          </label>
        ) : (
          <label>
            Every (seconds)
            <input type="number" min={1} step="any" value={every} onChange={(e) => setEvery(e.target.value)} />
          </label>
        )}
        <label>
          Time zone
          <input value={timezone} onChange={(e) => setTimezone(e.target.value)} />
        </label>
        <label className="span-2">
          Input (JSON)
          <textarea className="mono" rows={3} value={input} onChange={(e) => setInput(e.target.value)} />
        </label>
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="btn btn-primary">
        Create schedule
      </button>
    </form>
  );
}
