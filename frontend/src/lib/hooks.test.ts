import { act, renderHook } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { useKeyedState } from './hooks';

describe('useKeyedState', () => {
  it('keeps a value for its key and reads as the initial value under another key', () => {
    const { result, rerender } = renderHook(({ k }) => useKeyedState<number>(k, 0), { initialProps: { k: 'a' } });
    act(() => result.current[1](5));
    act(() => result.current[1]((n) => n + 1));
    expect(result.current[0]).toBe(6);

    rerender({ k: 'b' });
    expect(result.current[0]).toBe(0);
    act(() => result.current[1]((n) => n + 1));
    expect(result.current[0]).toBe(1);
  });

  it('drops a value set for a key that is no longer current', () => {
    const { result, rerender } = renderHook(({ k }) => useKeyedState<string | null>(k, null), { initialProps: { k: 'a' } });
    const setForA = result.current[1];
    rerender({ k: 'b' });
    act(() => setForA('late error for a'));
    expect(result.current[0]).toBeNull();
  });
});
