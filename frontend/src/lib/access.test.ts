import { describe, expect, it } from 'vitest';
import { capabilities, describePolicyDenied, formatRetryAfter, NO_CAPABILITIES } from './access';

describe('capabilities', () => {
  it('grants nothing before me has loaded', () => {
    expect(capabilities(null)).toEqual(NO_CAPABILITIES);
  });
  it('admins may write and see admin pages', () => {
    expect(capabilities({ role: 'ADMIN' })).toMatchObject({ canWrite: true, isAdmin: true, label: 'admin' });
  });
  it('operators and submitters may write but are not admins', () => {
    expect(capabilities({ role: 'OPERATOR' })).toMatchObject({ canWrite: true, isAdmin: false, canOperate: true, label: 'operator' });
    expect(capabilities({ role: 'SUBMITTER' })).toMatchObject({ canWrite: true, isAdmin: false, canOperate: false, label: 'submitter' });
  });
  it('viewers are read-only', () => {
    expect(capabilities({ role: 'VIEWER' })).toMatchObject({ canWrite: false, isAdmin: false, label: 'viewer' });
  });
  it('a superuser is an admin whatever the role says', () => {
    expect(capabilities({ role: 'SUBMITTER', isSuperuser: true })).toMatchObject({ canWrite: true, isAdmin: true, label: 'superuser' });
  });
  it('a token is read-only even when minted by an admin', () => {
    expect(capabilities({ role: 'ADMIN', tokenScope: 'tenant' })).toMatchObject({ canWrite: false, isAdmin: false, isToken: true, label: 'admin token' });
    expect(capabilities({ role: 'ADMIN', isSuperuser: true, tokenScope: 'job:1' }).isAdmin).toBe(false);
  });
});

describe('PolicyDenied', () => {
  it('formats retry-after', () => {
    expect(formatRetryAfter(null)).toBe('');
    expect(formatRetryAfter(undefined)).toBe('');
    expect(formatRetryAfter(2.345)).toBe('retry after 2.3 s');
    expect(formatRetryAfter(0)).toBe('retry after 0.1 s');
    expect(formatRetryAfter(12.2)).toBe('retry after 13 s');
    expect(formatRetryAfter(-1)).toBe('');
  });
  it('describes message, rule and retry-after', () => {
    expect(describePolicyDenied({ message: 'Rate limit exceeded', rule: 'rate_limit', retryAfterSeconds: 3 })).toBe(
      'Rate limit exceeded (rule: rate_limit) — retry after 3 s',
    );
    expect(describePolicyDenied({ message: 'Kind not allowed', rule: 'role_kinds', retryAfterSeconds: null })).toBe('Kind not allowed (rule: role_kinds)');
  });
});
