import { memo, useId, type ReactNode } from 'react';
import { pct, prettyJson } from '../lib/format';
import type { JobStatus } from '../gql/graphql';

export const JOB_STATUSES: JobStatus[] = ['QUEUED', 'SCHEDULED', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
export const CANCELLABLE: ReadonlySet<JobStatus> = new Set<JobStatus>(['QUEUED', 'SCHEDULED', 'RUNNING', 'RETRYING']);
export const RETRYABLE: ReadonlySet<JobStatus> = new Set<JobStatus>(['FAILED', 'CANCELLED']);
/** Statuses after which nothing more happens to a job (unless it is retried). */
export const FINISHED: ReadonlySet<JobStatus> = new Set<JobStatus>(['SUCCEEDED', 'FAILED', 'CANCELLED']);

const STATUS_LABEL: Record<JobStatus, string> = {
  QUEUED: 'Queued',
  SCHEDULED: 'Scheduled',
  RUNNING: 'Running',
  RETRYING: 'Retrying',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export function statusLabel(s: string): string {
  return STATUS_LABEL[s as JobStatus] ?? s;
}

export const StatusBadge = memo(function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge status-${status.toLowerCase()}`} data-status={status}>
      <span className="badge-dot" aria-hidden="true" />
      {statusLabel(status)}
    </span>
  );
});

export const ProgressBar = memo(function ProgressBar({
  value,
  status,
  label,
  size = 'sm',
}: {
  value: number | null | undefined;
  status?: string;
  label: string;
  size?: 'sm' | 'lg';
}) {
  const p = pct(value);
  const rounded = Math.round(p);
  return (
    <div
      className={`progress progress-${size} ${status ? `progress-${status.toLowerCase()}` : ''}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={rounded}
      aria-valuetext={`${rounded}%`}
    >
      <div className="progress-fill" style={{ transform: `scaleX(${p / 100})` }} />
    </div>
  );
});

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return <span className="spinner" role="status" aria-label={label} />;
}

export function LoadingState({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function EmptyState({ title, children, icon = '∅' }: { title: string; children?: ReactNode; icon?: ReactNode }) {
  return (
    <div className="state state-empty">
      <div className="state-icon" aria-hidden="true">
        {icon}
      </div>
      <h2 className="state-title">{title}</h2>
      {children && <div className="state-body">{children}</div>}
    </div>
  );
}

export function ErrorState({
  title = 'Something went wrong',
  error,
  onRetry,
}: {
  title?: string;
  error: string;
  onRetry?: () => void;
}) {
  const missingField = /Cannot query field|Unknown type|Unknown argument/i.test(error);
  return (
    <div className="state state-error" role="alert">
      <div className="state-icon" aria-hidden="true">
        !
      </div>
      <h2 className="state-title">{missingField ? 'Not available on this server yet' : title}</h2>
      <p className="state-body mono-wrap">{error}</p>
      {missingField && <p className="state-body muted">The API does not provide this yet. Other pages keep working.</p>}
      {onRetry && (
        <button type="button" className="btn" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function JsonView({ value, label, empty = 'None' }: { value: unknown; label: string; empty?: string }) {
  const id = useId();
  if (value === undefined || value === null) {
    return (
      <section className="json-block" aria-labelledby={id}>
        <h3 id={id} className="json-title">
          {label}
        </h3>
        <p className="muted">{empty}</p>
      </section>
    );
  }
  const text = prettyJson(value);
  return (
    <section className="json-block" aria-labelledby={id}>
      <div className="json-head">
        <h3 id={id} className="json-title">
          {label}
        </h3>
        <button
          type="button"
          className="btn btn-ghost btn-xs"
          onClick={() => void navigator.clipboard?.writeText(text)}
          aria-label={`Copy ${label} JSON`}
        >
          Copy
        </button>
      </div>
      <pre className="json" tabIndex={0} aria-label={`${label} JSON`}>
        <code>{highlightJson(text)}</code>
      </pre>
    </section>
  );
}

// Minimal JSON syntax colouring (no dependency).
function highlightJson(text: string): ReactNode[] {
  const out: ReactNode[] = [];
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/g;
  let last = 0;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1]) {
      out.push(
        <span key={i++} className={m[2] ? 'j-key' : 'j-str'}>
          {m[1]}
        </span>,
      );
      if (m[2]) out.push(m[2]);
    } else if (m[3]) {
      out.push(
        <span key={i++} className="j-lit">
          {m[3]}
        </span>,
      );
    } else if (m[4]) {
      out.push(
        <span key={i++} className="j-num">
          {m[4]}
        </span>,
      );
    }
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function Sparkline({
  values,
  label,
  width = 120,
  height = 32,
}: {
  values: number[];
  label: string;
  width?: number;
  height?: number;
}) {
  if (values.length < 2) {
    return (
      <svg className="sparkline" width={width} height={height} role="img" aria-label={`${label}: collecting data`}>
        <line x1={0} x2={width} y1={height - 1} y2={height - 1} className="spark-base" />
      </svg>
    );
  }
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  const area = `0,${height} ${pts.join(' ')} ${width},${height}`;
  const latest = values[values.length - 1] ?? 0;
  return (
    <svg
      className="sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${label}: latest ${latest}, peak ${Math.max(...values)} over ${values.length} samples`}
    >
      <polygon points={area} className="spark-area" />
      <polyline points={pts.join(' ')} className="spark-line" fill="none" />
    </svg>
  );
}

/** Renders `backtick` spans of a description (docstrings) as inline code. */
export function RichText({ text }: { text: string }) {
  const parts = text.split(/(`[^`]+`)/g);
  return (
    <>
      {parts.map((p, i) =>
        p.length > 2 && p.startsWith('`') && p.endsWith('`') ? <code key={i}>{p.slice(1, -1)}</code> : p,
      )}
    </>
  );
}

export function PageHeader({ title, subtitle, actions }: { title: string; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle && <p className="page-subtitle">{subtitle}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </div>
  );
}
