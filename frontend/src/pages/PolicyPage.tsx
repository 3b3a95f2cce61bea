import { Link, useSearchParams } from 'react-router-dom';
import { useClients } from '../lib/ApiProvider';
import { buildFilter } from '../lib/audit';
import { formatTime, shortId } from '../lib/format';
import { useDocumentTitle } from '../lib/hooks';
import { PolicyDecisionsQuery } from '../lib/operations';
import { usePagedQuery } from '../lib/usePaged';
import type { PolicyDecisionFilter } from '../gql/graphql';
import { AdminOnly } from '../components/AdminOnly';
import { EmptyState, ErrorState, LoadingState, PageHeader } from '../components/ui';
import { FilterForm, LoadMore } from './AuditPage';

const FILTER_KEYS = ['decision', 'action', 'jobKind', 'principalId'] as const;

export function PolicyPage() {
  useDocumentTitle('Policy decisions');
  return (
    <div className="page">
      <PageHeader title="Policy decisions" subtitle="What the admission policy allowed or denied, and why, newest first." />
      <AdminOnly what="The policy decision log">
        <DecisionsTable />
      </AdminOnly>
    </div>
  );
}

function DecisionsTable() {
  const { urql } = useClients();
  const [params, setParams] = useSearchParams();
  const filter = buildFilter<keyof PolicyDecisionFilter>(Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k)]))) as PolicyDecisionFilter | null;
  const page = usePagedQuery(urql, PolicyDecisionsQuery, 'policyDecisions', { filter });

  return (
    <>
      <FilterForm
        key={params.toString()}
        fields={[
          {
            name: 'decision',
            label: 'Decision',
            options: [
              { value: '', label: 'Any' },
              { value: 'allow', label: 'Allow' },
              { value: 'deny', label: 'Deny' },
            ],
          },
          { name: 'action', label: 'Action', placeholder: 'submit, retry' },
          { name: 'jobKind', label: 'Job kind', placeholder: 'demo.sleep' },
          { name: 'principalId', label: 'Principal ID', placeholder: 'key id' },
        ]}
        values={params}
        onApply={(v) => setParams(v, { replace: true })}
      />
      {page.loading && !page.items.length ? (
        <LoadingState label="Loading policy decisions…" />
      ) : page.error && !page.items.length ? (
        <ErrorState title="Could not load policy decisions" error={page.error} onRetry={page.reload} />
      ) : !page.items.length ? (
        <EmptyState title={filter ? 'No decisions match these filters' : 'No decisions recorded yet'} icon="∅">
          <p>{filter ? 'Clear the filters to see every decision.' : 'Every submit and retry is checked against the admission policy; the outcome is recorded here.'}</p>
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap" data-testid="policy-table">
            <table className="table policy-table">
              <caption className="sr-only">Admission policy decisions, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Principal</th>
                  <th scope="col">Action</th>
                  <th scope="col">Job kind</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Rule</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Policy</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((d) => (
                  <tr key={d.id} data-decision={d.decision}>
                    <td className="nowrap">
                      <time dateTime={d.at}>{formatTime(d.at)}</time>
                    </td>
                    <td>
                      <span className="cell-main">{d.principalName}</span>
                      <span className="cell-sub mono">{d.principalId}</span>
                    </td>
                    <td className="mono">{d.action}</td>
                    <td>
                      {d.jobKind ? <span className="mono">{d.jobKind}</span> : <span className="muted">—</span>}
                      {d.jobId && (
                        <Link className="cell-sub mono" to={`/jobs/${d.jobId}`} aria-label={`Job ${shortId(d.jobId)}`}>
                          {shortId(d.jobId)}
                        </Link>
                      )}
                    </td>
                    <td>
                      <span className={`badge decision-${d.decision === 'allow' ? 'allow' : 'deny'}`}>
                        <span className="badge-dot" aria-hidden="true" />
                        {d.decision}
                      </span>
                    </td>
                    <td className="mono">{d.rule}</td>
                    <td className="cell-wrap">{d.reason}</td>
                    <td className="nowrap">v{d.policyVersion}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <LoadMore page={page} noun="decisions" />
        </>
      )}
    </>
  );
}
