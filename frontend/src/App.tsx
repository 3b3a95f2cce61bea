import { Navigate, NavLink, Route, Routes, useLocation } from 'react-router-dom';
import { useApi } from './lib/ApiProvider';
import { MeProvider, useMe } from './lib/me';
import { ConnectionIndicator } from './components/ConnectionIndicator';
import { SignInPage } from './pages/SignInPage';
import { JobsPage } from './pages/JobsPage';
import { JobPage } from './pages/JobPage';
import { SubmitPage } from './pages/SubmitPage';
import { DeadLetterPage } from './pages/DeadLetterPage';
import { QueuesPage } from './pages/QueuesPage';
import { SchedulesPage } from './pages/SchedulesPage';
import { AuditPage } from './pages/AuditPage';
import { PolicyPage } from './pages/PolicyPage';
import { RunsPage } from './pages/workflows/RunsPage';
import { RunPage } from './pages/workflows/RunPage';
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
  { to: '/workflows', label: 'Workflows' },
  { to: '/submit', label: 'Submit' },
  { to: '/dead-letter', label: 'Dead letter' },
  { to: '/queues', label: 'Queues & workers' },
  { to: '/schedules', label: 'Schedules' },
];

/** Admin-only pages: hidden from the navigation for everyone else (they show "Admins only" if opened). */
const ADMIN_NAV = [
  { to: '/audit', label: 'Audit log' },
  { to: '/policy', label: 'Policy decisions' },
];

function Shell() {
  return (
    <MeProvider>
      <ShellLayout />
    </MeProvider>
  );
}

function ShellLayout() {
  const { caps } = useMe();
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
          {caps.isAdmin &&
            ADMIN_NAV.map((n) => (
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
          <Route path="/workflows" element={<RunsPage />} />
          <Route path="/workflows/:id" element={<RunPage />} />
          <Route path="/submit" element={<SubmitPage />} />
          <Route path="/dead-letter" element={<DeadLetterPage />} />
          <Route path="/queues" element={<QueuesPage />} />
          <Route path="/schedules" element={<SchedulesPage />} />
          <Route path="/audit" element={<AuditPage />} />
          <Route path="/policy" element={<PolicyPage />} />
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
  const { me, caps, error, fetching } = useMe();
  return (
    <div className="me">
      <div className="me-who" aria-live="polite">
        {fetching && !me ? (
          <span className="muted">Checking key…</span>
        ) : error ? (
          <span className="text-danger" title={error}>
            Can't reach API
          </span>
        ) : me ? (
          <>
            <span className="me-label">Signed in as</span>{' '}
            <strong data-testid="me-name">{me.name}</strong>
            <span className="pill pill-role" data-testid="me-role" data-role={me.role.toLowerCase()} title={`Role: ${caps.label}`}>
              {caps.label}
            </span>
          </>
        ) : null}
      </div>
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => signOut()}>
        Sign out
      </button>
    </div>
  );
}
