import { describe as suite, expect, it } from 'vitest';
import { describe } from './client';

suite('describe', () => {
  it('reads the message of GraphQL errors as sent (plain objects, not Errors)', () => {
    expect(describe([{ message: 'Cannot query field "x"', path: ['x'] }, new Error('second')])).toBe('Cannot query field "x"; second');
  });
  it('describes close events and anything else without "[object Object]"', () => {
    expect(describe({ code: 4403, reason: 'Forbidden' })).toBe('Connection closed (4403: Forbidden)');
    expect(describe({ unexpected: true })).toBe('{"unexpected":true}');
    expect(describe('plain')).toBe('plain');
  });
});
