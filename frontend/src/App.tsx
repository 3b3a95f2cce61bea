import { Navigate, NavLink, Route, Routes, useLocation } from 'react-router-dom';
import { useQuery } from 'urql';
import { useApi } from './lib/ApiProvider';
import { MeQuery } from './lib/operations';
import { ConnectionIndicator } from './components/ConnectionIndicator';
import { SignInPage } from './pages/SignInPage';
import { JobsPage } from './pages/JobsPage';
import { JobPage } from './pages/JobPage';
import { SubmitPage } from './pages/SubmitPage';
import { DeadLetterPage } from './pages/DeadLetterPage';
import { QueuesPage } from './pages/QueuesPage';
import { EmptyState } from './components/ui';

export function App() {
  const { apiKey } = useApi();
  const location = useLocation();
  if (!apiKey) {
    if (location.pathname !== '/signin') {
      const next = location.pathname + location.search;
      return <Navigate to={`/signin${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`} replace />;
    }
    return <SignInPage />;
  }
  return <Shell />;
}

function Logo() {
  return (
    <svg width="26" height="26" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
      <rect width="32" height="32" rx="7" fill="currentColor" />
      <path d="M7 11h18M7 16h13M7 21h8" stroke="var(--logo-ink)" strokeWidth="3" strokeLinecap="round" />
    </svg>
  );
}

const NAV = [
  { to: '/jobs', label: 'Jobs' },
  { to: '/submit', label: 'Submit' },
  { to: '/dead-letter', label: 'Dead letter' },
  { to: '/queues', label: 'Queues & workers' },
];

function Shell() {
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="sidebar">
        <div className="brand">
          <span className="brand-logo">
            <Logo />
          </span>
          <span className="brand-name">Conveyor</span>
        </div>
        <nav className="nav" aria-label="Main">
          {NAV.map((n) => (
            <NavLink key={n.to} to={n.to} className={({ isActive }) => `nav-link${isActive ? ' active' : ''}`}>
              {n.label}
            </NavLink>
          ))}
          <a className="nav-link" href="/graphiql">
            API explorer
          </a>
        </nav>
        <div className="sidebar-foot">
          <ConnectionIndicator />
          <Me />
        </div>
      </header>
      <main id="main" className="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Navigate to="/jobs" replace />} />
          <Route path="/signin" element={<Navigate to="/jobs" replace />} />
          <Route path="/jobs" element={<JobsPage />} />
          <Route path="/jobs/:id" element={<JobPage />} />
          <Route path="/submit" element={<SubmitPage />} />
          <Route path="/dead-letter" element={<DeadLetterPage />} />
          <Route path="/queues" element={<QueuesPage />} />
          <Route
            path="*"
            element={
              <EmptyState title="Page not found" icon="?">
                <NavLink to="/jobs">Go to jobs</NavLink>
              </EmptyState>
            }
          />
        </Routes>
      </main>
    </div>
  );
}

function Me() {
  const { signOut } = useApi();
  const [{ data, error, fetching }] = useQuery({ query: MeQuery });
  return (
    <div className="me">
      <div className="me-who" aria-live="polite">
        {fetching && !data ? (
          <span className="muted">Checking key…</span>
        ) : error ? (
          <span className="text-danger" title={error.message}>
            Can't reach API
          </span>
        ) : data ? (
          <>
            <span className="me-label">Signed in as</span>{' '}
            <strong data-testid="me-name">{data.me.name}</strong>
            {data.me.isAdmin && <span className="pill pill-admin">admin</span>}
          </>
        ) : null}
      </div>
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => signOut()}>
        Sign out
      </button>
    </div>
  );
}
