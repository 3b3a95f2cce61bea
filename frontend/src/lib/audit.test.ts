import { describe, expect, it } from 'vitest';
import { appendPage, buildFilter, short, summarizeChange } from './audit';

describe('summarizeChange', () => {
  it('shows changed keys of before/after', () => {
    expect(summarizeChange({ status: 'RUNNING', attempt: 1 }, { status: 'CANCELLED', attempt: 1 })).toBe('status: RUNNING → CANCELLED');
  });
  it('shows added and removed keys', () => {
    expect(summarizeChange({ a: 1, gone: true }, { a: 1, b: 'x' })).toBe('−gone, b: x');
  });
  it('summarises a creation (after only) and a deletion (before only)', () => {
    expect(summarizeChange(null, { kind: 'demo.sleep', priority: 'NORMAL' })).toBe('kind: demo.sleep, priority: NORMAL');
    expect(summarizeChange({ name: 'k' }, null)).toBe('removed name: k');
  });
  it('handles no change, nothing, and scalars', () => {
    expect(summarizeChange({ a: 1 }, { a: 1 })).toBe('no change');
    expect(summarizeChange(null, null)).toBe('—');
    expect(summarizeChange('a', 'b')).toBe('a → b');
    expect(summarizeChange(null, [1, 2])).toBe('∅ → [1,2]');
  });
  it('shortens long values', () => {
    expect(short('x'.repeat(50), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(short({ a: 1 })).toBe('{"a":1}');
  });
});

describe('buildFilter', () => {
  it('drops blank values and returns null when empty', () => {
    expect(buildFilter({ action: ' job. ', target: '', actorId: null })).toEqual({ action: 'job.' });
    expect(buildFilter({ action: '  ' })).toBeNull();
  });
});

describe('appendPage', () => {
  it('appends without duplicates', () => {
    expect(appendPage([{ id: '1' }, { id: '2' }], [{ id: '2' }, { id: '3' }]).map((x) => x.id)).toEqual(['1', '2', '3']);
  });
});
