// Pure rules for what the signed-in caller may do (mirrors conveyor/domain/policy.py):
//   admin     everything in its tenant: keys, tokens, policy, audit
//   operator  submit; cancel and retry any job of its tenant
//   submitter submit; see, cancel and retry its own jobs (the API only lists those)
//   viewer    read-only
// A token (tokenScope set) is read-only whatever its key's role; a superuser key is an admin.
import type { Role } from '../gql/graphql';

export interface Caller {
  role: Role;
  isAdmin?: boolean | null;
  isSuperuser?: boolean | null;
  tokenScope?: string | null;
}

export interface Capabilities {
  /** May submit, cancel and retry jobs (the ones it can see). */
  canWrite: boolean;
  /** May read the audit log and policy decisions, manage keys and policy. */
  isAdmin: boolean;
  /** May manage schedules and pause queues (admins and operators). */
  canOperate: boolean;
  /** True for a read-only token. */
  isToken: boolean;
  /** Short label for the sidebar: `admin`, `operator`, …, `superuser`, `token`. */
  label: string;
}

const WRITERS: ReadonlySet<Role> = new Set<Role>(['ADMIN', 'OPERATOR', 'SUBMITTER']);

/** Before `me` has loaded nothing is granted (no flash of buttons a viewer may not use). */
export const NO_CAPABILITIES: Capabilities = { canWrite: false, isAdmin: false, canOperate: false, isToken: false, label: '' };

export function capabilities(me: Caller | null | undefined): Capabilities {
  if (!me) return NO_CAPABILITIES;
  const isToken = me.tokenScope != null;
  if (isToken) return { canWrite: false, isAdmin: false, canOperate: false, isToken: true, label: `${roleLabel(me.role)} token` };
  const isAdmin = me.role === 'ADMIN' || !!me.isSuperuser;
  return {
    canWrite: isAdmin || WRITERS.has(me.role),
    isAdmin,
    canOperate: isAdmin || me.role === 'OPERATOR',
    isToken: false,
    label: me.isSuperuser ? 'superuser' : roleLabel(me.role),
  };
}

export function roleLabel(role: string): string {
  return role.toLowerCase();
}

export interface PolicyDeniedLike {
  message: string;
  rule: string;
  retryAfterSeconds?: number | null | undefined;
}

/** "Rate limit exceeded (rule: rate_limit) — retry after 3 s". */
export function describePolicyDenied(d: PolicyDeniedLike): string {
  const parts = [d.message.trim() || 'Refused by the admission policy'];
  if (d.rule) parts[0] += ` (rule: ${d.rule})`;
  const after = formatRetryAfter(d.retryAfterSeconds);
  if (after) parts.push(after);
  return parts.join(' — ');
}

export function formatRetryAfter(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '';
  const s = seconds < 10 ? Math.max(0.1, Math.round(seconds * 10) / 10) : Math.ceil(seconds);
  return `retry after ${s} s`;
}

/** Whether an error message from the API is a FORBIDDEN refusal (role or token scope). */
export function isForbidden(message: string): boolean {
  return /forbidden|may not|only a superuser|read-only token cannot/i.test(message);
}
