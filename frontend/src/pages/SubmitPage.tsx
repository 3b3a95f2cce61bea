import { useId, useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { useMutation, useQuery } from 'urql';
import { describe } from '../lib/client';
import { formatDuration } from '../lib/format';
import { useDocumentTitle, useKeyedState } from '../lib/hooks';
import { JobKindsQuery, SubmitJobMutation } from '../lib/operations';
import { buildPayload, initialValues, mapApiFieldErrors, parseSchema, type FieldErrors, type RawValues } from '../lib/schemaForm';
import { SchemaFields } from '../components/SchemaForm';
import { EmptyState, ErrorState, LoadingState, PageHeader, RichText } from '../components/ui';
import { useMe } from '../lib/me';
import { describePolicyDenied, formatRetryAfter } from '../lib/access';
import { useToast } from '../components/Toasts';
import type { JobKindsQuery as JobKindsResult, Priority, SubmitJobInput } from '../gql/graphql';

type Kind = JobKindsResult['jobKinds'][number];

export function SubmitPage() {
  useDocumentTitle('Submit job');
  const [kinds, refetch] = useQuery({ query: JobKindsQuery });
  const [params, setParams] = useSearchParams();
  const list = kinds.data?.jobKinds ?? [];
  // Local state answers the click at once; the URL follows (router updates are transitions,
  // which would briefly revert a controlled radio).
  const urlKind = params.get('kind');
  const [picked, setPicked] = useKeyedState<string | null>(urlKind ?? '', urlKind);
  const selectedName = picked ?? list[0]?.name ?? '';
  const kind = list.find((k) => k.name === selectedName);
  const pickerId = useId();
  const { me, caps } = useMe();

  return (
    <div className="page">
      <PageHeader title="Submit a job" subtitle="Pick a kind; the form is generated from its input schema." />
      {me && !caps.canWrite ? (
        <div className="notice readonly-notice" role="status" data-testid="readonly-notice">
          <span aria-hidden="true">🔒</span>
          <span>
            <strong>Read-only access.</strong> You are signed in as <strong>{me.name}</strong> ({caps.label}), which can look at jobs but not
            submit, cancel or retry them. Ask an admin for a submitter or operator key.
          </span>
        </div>
      ) : kinds.fetching && !kinds.data ? (
        <LoadingState label="Loading job kinds…" />
      ) : kinds.error && !kinds.data ? (
        <ErrorState title="Could not load job kinds" error={describe(kinds.error)} onRetry={() => refetch({ requestPolicy: 'network-only' })} />
      ) : list.length === 0 ? (
        <EmptyState title="No job kinds registered" icon="∅">
          <p>Workers register job kinds in code; none are known to this API yet.</p>
        </EmptyState>
      ) : (
        <div className="submit-layout">
          <fieldset className="kind-picker card">
            <legend id={pickerId}>Job kind</legend>
            <div className="kind-list">
              {list.map((k) => (
                <label key={k.name} className={`kind-option ${k.name === selectedName ? 'is-selected' : ''}`}>
                  <input
                    type="radio"
                    name="kind"
                    value={k.name}
                    checked={k.name === selectedName}
                    onChange={() => {
                      setPicked(k.name);
                      setParams({ kind: k.name }, { replace: true });
                    }}
                  />
                  <span className="kind-name mono">{k.name}</span>
                  {k.description && (
                    <span className="kind-desc">
                      <RichText text={k.description} />
                    </span>
                  )}
                  <span className="kind-meta">
                    queue {k.queue} · {k.maxAttempts} attempt{k.maxAttempts === 1 ? '' : 's'} · timeout {formatDuration(k.timeoutSeconds * 1000)}
                  </span>
                </label>
              ))}
            </div>
          </fieldset>
          {kind ? (
            <SubmitForm key={kind.name} kind={kind} prefill={params.get('kind') === kind.name ? parsePrefill(params.get('payload')) : undefined} />
          ) : (
            <EmptyState title={`Unknown kind “${selectedName}”`} />
          )}
        </div>
      )}
    </div>
  );
}

const PRIORITIES: Priority[] = ['HIGH', 'NORMAL', 'LOW'];

function parsePrefill(raw: string | null): Record<string, unknown> | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function SubmitForm({ kind, prefill }: { kind: Kind; prefill?: Record<string, unknown> | undefined }) {
  const fields = useMemo(() => parseSchema(kind.inputSchema), [kind.inputSchema]);
  const [values, setValues] = useState<RawValues>(() => initialValues(fields, prefill));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<React.ReactNode>(null);
  const [validate, setValidate] = useState(true);
  const [priority, setPriority] = useState<Priority | ''>('');
  const [maxAttempts, setMaxAttempts] = useState('');
  const [timeoutSeconds, setTimeoutSeconds] = useState('');
  const [delaySeconds, setDelaySeconds] = useState('');
  const [idempotencyKey, setIdempotencyKey] = useState('');
  const [optErrors, setOptErrors] = useState<Record<string, string>>({});
  const [result, submit] = useMutation(SubmitJobMutation);
  const navigate = useNavigate();
  const toast = useToast();
  const base = useId();


  const preview = useMemo(() => buildPayload(fields, values, { validate: false }).payload, [fields, values]);

  function parseOptions(): { input: Partial<SubmitJobInput>; errs: Record<string, string> } {
    const input: Partial<SubmitJobInput> = {};
    const errs: Record<string, string> = {};
    if (priority) input.priority = priority;
    if (maxAttempts.trim()) {
      const n = Number(maxAttempts);
      if (!Number.isInteger(n) || n < 1) errs.maxAttempts = 'Whole number ≥ 1';
      else input.maxAttempts = n;
    }
    if (timeoutSeconds.trim()) {
      const n = Number(timeoutSeconds);
      if (!Number.isFinite(n) || n <= 0) errs.timeoutSeconds = 'Number of seconds > 0';
      else input.timeoutSeconds = n;
    }
    if (delaySeconds.trim()) {
      const n = Number(delaySeconds);
      if (!Number.isFinite(n) || n < 0) errs.delaySeconds = 'Number of seconds ≥ 0';
      else if (n > 0) input.runAt = new Date(Date.now() + n * 1000).toISOString();
    }
    if (idempotencyKey.trim()) input.idempotencyKey = idempotencyKey.trim();
    return { input, errs };
  }

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    setFormError(null);
    const { payload, errors: clientErrors } = buildPayload(fields, values, { validate });
    const { input: opts, errs } = parseOptions();
    setOptErrors(validate ? errs : {});
    if (validate && (Object.keys(clientErrors).length || Object.keys(errs).length)) {
      setErrors(clientErrors);
      setFormError('Fix the highlighted fields.');
      focusFirstError();
      return;
    }
    setErrors({});
    const res = await submit({ input: { kind: kind.name, payload, ...opts } });
    if (res.error) {
      setFormError(describe(res.error));
      return;
    }
    const r = res.data?.submitJob;
    if (!r) {
      setFormError('The API returned no result.');
      return;
    }
    switch (r.__typename) {
      case 'Job':
        toast(r.deduplicated ? 'An identical job already exists (idempotency key): showing it.' : `Submitted ${kind.name}`, 'success');
        void navigate(`/jobs/${r.id}`);
        return;
      case 'InvalidInput': {
        const mapped = mapApiFieldErrors(fields, r.fieldErrors);
        const { '': unmatched, ...byField } = mapped;
        setErrors(byField);
        setFormError(unmatched ? `${r.message}: ${unmatched}` : r.message);
        focusFirstError();
        return;
      }
      case 'Conflict':
        setFormError(
          <>
            {r.message} <Link to={`/jobs/${r.existingJobId}`}>Open the existing job</Link>
          </>,
        );
        return;
      case 'PolicyDenied':
        setFormError(<PolicyDeniedMessage message={r.message} rule={r.rule} retryAfterSeconds={r.retryAfterSeconds} />);
        return;
      default:
        setFormError(r.message);
    }
  }

  function focusFirstError() {
    requestAnimationFrame(() => {
      const el = document.querySelector<HTMLElement>('.submit-form [aria-invalid="true"]');
      el?.focus();
    });
  }

  return (
    <form className="submit-form card" onSubmit={(e) => void onSubmit(e)} noValidate aria-labelledby={`${base}-title`}>
      <div className="card-head">
        <h2 id={`${base}-title`}>
          <span className="mono">{kind.name}</span>
        </h2>
        <span className="muted small">queue {kind.queue}</span>
      </div>
      {kind.description && (
        <p className="muted">
          <RichText text={kind.description} />
        </p>
      )}

      <SchemaFields
        fields={fields}
        values={values}
        errors={errors}
        onChange={(name, v) => {
          setValues((prev) => ({ ...prev, [name]: v }));
          if (errors[name]) setErrors(({ [name]: _drop, ...rest }) => rest);
        }}
        onBlurValidate={(name, err) => {
          if (!validate) return;
          setErrors(({ [name]: _drop, ...rest }) => (err ? { ...rest, [name]: err } : rest));
        }}
        disabled={result.fetching}
      />

      <details className="options">
        <summary>Options</summary>
        <div className="options-grid">
          <div className="field">
            <label className="field-label" htmlFor={`${base}-priority`}>
              Priority
            </label>
            <select id={`${base}-priority`} className="input" value={priority} onChange={(e) => setPriority(e.target.value as Priority | '')}>
              <option value="">Default</option>
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {p.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
          <OptionInput id={`${base}-max`} label="Max attempts" value={maxAttempts} onChange={setMaxAttempts} placeholder={String(kind.maxAttempts)} error={optErrors.maxAttempts} />
          <OptionInput
            id={`${base}-timeout`}
            label="Timeout (seconds)"
            value={timeoutSeconds}
            onChange={setTimeoutSeconds}
            placeholder={String(kind.timeoutSeconds)}
            error={optErrors.timeoutSeconds}
          />
          <OptionInput id={`${base}-delay`} label="Delay (seconds)" value={delaySeconds} onChange={setDelaySeconds} placeholder="0" error={optErrors.delaySeconds} />
          <div className="field">
            <label className="field-label" htmlFor={`${base}-idem`}>
              Idempotency key
            </label>
            <input id={`${base}-idem`} className="input mono" value={idempotencyKey} onChange={(e) => setIdempotencyKey(e.target.value)} autoComplete="off" />
          </div>
          <div className="field field-check">
            <label className="field-label" htmlFor={`${base}-validate`}>
              Validate in the browser
            </label>
            <input
              id={`${base}-validate`}
              type="checkbox"
              className="checkbox"
              checked={validate}
              onChange={(e) => setValidate(e.target.checked)}
              aria-describedby={`${base}-validate-hint`}
            />
            <p className="field-hint" id={`${base}-validate-hint`}>
              Turn off to send values as typed and see the API's own validation.
            </p>
          </div>
        </div>
      </details>

      <details className="options">
        <summary>Payload preview</summary>
        <pre className="json small" tabIndex={0} aria-label="Payload preview">
          {JSON.stringify(preview, null, 2)}
        </pre>
      </details>

      {formError && (
        <div className="form-error" role="alert">
          {formError}
        </div>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={result.fetching}>
          {result.fetching ? 'Submitting…' : 'Submit job'}
        </button>
        <button
          type="button"
          className="btn btn-ghost"
          onClick={() => {
            setValues(initialValues(fields));
            setErrors({});
            setFormError(null);
          }}
        >
          Reset
        </button>
      </div>
    </form>
  );
}

function OptionInput({
  id,
  label,
  value,
  onChange,
  placeholder,
  error,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  error?: string | undefined;
}) {
  return (
    <div className={`field ${error ? 'field-invalid' : ''}`}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      <input
        id={id}
        className="input"
        inputMode="decimal"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-err` : undefined}
      />
      {error && (
        <p className="field-error" id={`${id}-err`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** A PolicyDenied answer: the message, the rule that refused it, and when to try again. */
export function PolicyDeniedMessage({ message, rule, retryAfterSeconds }: { message: string; rule: string; retryAfterSeconds?: number | null | undefined }) {
  const after = formatRetryAfter(retryAfterSeconds);
  return (
    <span className="policy-denied" data-testid="policy-denied" title={describePolicyDenied({ message, rule, retryAfterSeconds })}>
      <span>Refused by the admission policy: {message}</span>
      <span className="pd-meta">
        Rule <code>{rule}</code>
        {after && <> · {after.charAt(0).toUpperCase() + after.slice(1)}</>}
      </span>
    </span>
  );
}
