import { useId, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router-dom';
import { useClients } from '../lib/ApiProvider';
import { buildFilter, summarizeChange } from '../lib/audit';
import { formatTime, prettyJson } from '../lib/format';
import { useDocumentTitle } from '../lib/hooks';
import { AuditLogQuery } from '../lib/operations';
import { usePagedQuery, type Paged } from '../lib/usePaged';
import type { AuditLogFilter } from '../gql/graphql';
import { AdminOnly } from '../components/AdminOnly';
import { EmptyState, ErrorState, LoadingState, PageHeader } from '../components/ui';

const FILTER_KEYS = ['action', 'actorId', 'target'] as const;

export function AuditPage() {
  useDocumentTitle('Audit log');
  return (
    <div className="page">
      <PageHeader title="Audit log" subtitle="Every change made in this tenant, newest first: who did what to which target." />
      <AdminOnly what="The audit log">
        <AuditTable />
      </AdminOnly>
    </div>
  );
}

function AuditTable() {
  const { urql } = useClients();
  const [params, setParams] = useSearchParams();
  const filter = buildFilter<keyof AuditLogFilter>(Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k)]))) as AuditLogFilter | null;
  const page = usePagedQuery(urql, AuditLogQuery, 'auditLog', { filter });

  return (
    <>
      <FilterForm
        key={params.toString()}
        fields={[
          { name: 'action', label: 'Action', placeholder: 'job.submit or job.', hint: 'An action, or a prefix ending in a dot' },
          { name: 'actorId', label: 'Actor ID', placeholder: 'key id' },
          { name: 'target', label: 'Target', placeholder: 'job:…' },
        ]}
        values={params}
        onApply={(v) => setParams(v, { replace: true })}
      />
      {page.loading && !page.items.length ? (
        <LoadingState label="Loading the audit log…" />
      ) : page.error && !page.items.length ? (
        <ErrorState title="Could not load the audit log" error={page.error} onRetry={page.reload} />
      ) : !page.items.length ? (
        <EmptyState title={filter ? 'No entries match these filters' : 'No audit entries yet'} icon="∅">
          <p>{filter ? 'Try a broader action prefix such as “job.”, or clear the filters.' : 'Submitting, cancelling and retrying jobs, and managing keys and policy, is recorded here.'}</p>
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap" data-testid="audit-table">
            <table className="table audit-table">
              <caption className="sr-only">Audit log entries, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Change</th>
                  <th scope="col">Request</th>
                  <th scope="col">Client</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((e) => (
                  <tr key={e.id} data-action={e.action}>
                    <td className="nowrap">
                      <time dateTime={e.at}>{formatTime(e.at)}</time>
                    </td>
                    <td>
                      <span className="cell-main">{e.actorName}</span>
                      {e.actorId && <span className="cell-sub mono">{e.actorId}</span>}
                    </td>
                    <td>
                      <span className="pill mono">{e.action}</span>
                    </td>
                    <td className="mono cell-wrap">{e.target ?? '—'}</td>
                    <td className="cell-wrap">
                      <ChangeSummary before={e.before} after={e.after} />
                    </td>
                    <td className="mono small cell-wrap">{e.requestId ?? '—'}</td>
                    <td className="mono small nowrap">{e.clientAddress ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <LoadMore page={page} noun="entries" />
        </>
      )}
    </>
  );
}

function ChangeSummary({ before, after }: { before: unknown; after: unknown }) {
  const summary = summarizeChange(before, after);
  if (before == null && after == null) return <span className="muted">—</span>;
  return (
    <details className="change">
      <summary>{summary}</summary>
      <div className="change-json">
        <div>
          <span className="cell-sub">Before</span>
          <pre className="json small">{before == null ? 'null' : prettyJson(before)}</pre>
        </div>
        <div>
          <span className="cell-sub">After</span>
          <pre className="json small">{after == null ? 'null' : prettyJson(after)}</pre>
        </div>
      </div>
    </details>
  );
}

export function LoadMore({ page, noun }: { page: Paged<unknown>; noun: string }) {
  return (
    <div className="table-foot">
      <span aria-live="polite">
        {page.items.length} {noun} shown{page.hasMore ? '' : ' — that is all'}
        {page.error && <span className="text-danger"> · {page.error}</span>}
      </span>
      {page.hasMore && (
        <button type="button" className="btn btn-sm" onClick={page.loadMore} disabled={page.loadingMore}>
          {page.loadingMore ? 'Loading…' : 'Load more'}
        </button>
      )}
    </div>
  );
}

export interface FilterField {
  name: string;
  label: string;
  placeholder?: string;
  hint?: string;
  options?: { value: string; label: string }[];
}

/** A small filter form; applying writes the non-blank values into the URL. */
export function FilterForm({ fields, values, onApply }: { fields: FilterField[]; values: URLSearchParams; onApply: (v: Record<string, string>) => void }) {
  const base = useId();
  const [draft, setDraft] = useState<Record<string, string>>(() => Object.fromEntries(fields.map((f) => [f.name, values.get(f.name) ?? ''])));
  const active = fields.some((f) => values.get(f.name));
  function apply(e: FormEvent) {
    e.preventDefault();
    onApply(Object.fromEntries(Object.entries(draft).filter(([, v]) => v.trim()).map(([k, v]) => [k, v.trim()])));
  }
  return (
    <form className="filters filter-form" onSubmit={apply} role="search" aria-label="Filters">
      {fields.map((f) => (
        <div className="field" key={f.name}>
          <label className="field-label" htmlFor={`${base}-${f.name}`}>
            {f.label}
          </label>
          {f.options ? (
            <select
              id={`${base}-${f.name}`}
              className="input"
              value={draft[f.name] ?? ''}
              onChange={(e) => {
                const next = { ...draft, [f.name]: e.target.value };
                setDraft(next);
                onApply(Object.fromEntries(Object.entries(next).filter(([, v]) => v.trim()).map(([k, v]) => [k, v.trim()])));
              }}
            >
              {f.options.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          ) : (
            <input
              id={`${base}-${f.name}`}
              className="input"
              value={draft[f.name] ?? ''}
              placeholder={f.placeholder}
              title={f.hint}
              autoComplete="off"
              onChange={(e) => setDraft({ ...draft, [f.name]: e.target.value })}
            />
          )}
        </div>
      ))}
      <div className="filter-actions">
        <button type="submit" className="btn btn-sm btn-primary">
          Apply
        </button>
        {active && (
          <button type="button" className="btn btn-sm btn-ghost" onClick={() => onApply({})}>
            Clear
          </button>
        )}
      </div>
    </form>
  );
}
