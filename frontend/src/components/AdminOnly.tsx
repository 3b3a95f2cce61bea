import type { ReactNode } from 'react';
import { Lock } from 'lucide-react';
import { NavLink } from 'react-router-dom';
import { useMe } from '../lib/me';
import { EmptyState, ErrorState, LoadingState } from './ui';

/** Renders `children` for admins; otherwise a clear "admins only" state (the API would refuse anyway). */
export function AdminOnly({ what, children }: { what: string; children: ReactNode }) {
  const { me, caps, fetching, error } = useMe();
  if (!me && fetching) return <LoadingState label="Checking your role…" />;
  if (!me && error) return <ErrorState title="Could not check your role" error={error} />;
  if (!caps.isAdmin) {
    return (
      <div data-testid="admins-only">
        <EmptyState title="Admins only" icon={<Lock size={28} strokeWidth={2} aria-hidden="true" data-testid="admins-only-icon" />}>
          <p>
            {what} is visible to admins of the tenant. You are signed in as <strong>{me?.name ?? 'unknown'}</strong>
            {caps.label ? ` (${caps.label})` : ''}.
          </p>
          <p>
            <NavLink to="/jobs">Back to jobs</NavLink>
          </p>
        </EmptyState>
      </div>
    );
  }
  return <>{children}</>;
}
