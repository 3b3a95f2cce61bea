import { describe, expect, it } from 'vitest';
import { formatCount, formatDuration, formatEventData, pct, resultPlaceholder } from './format';

describe('format', () => {
  it('formats durations compactly', () => {
    expect(formatDuration(450)).toBe('450ms');
    expect(formatDuration(2400)).toBe('2.4s');
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(125_000)).toBe('2m 5s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(null)).toBe('—');
  });
  it('reads progress as a 0..1 fraction', () => {
    expect(pct(0.5)).toBe(50);
    expect(pct(1)).toBe(100);
    expect(pct(null)).toBe(0);
  });
});

describe('formatCount', () => {
  it('shows a count bounded by totalCount(atMost:) as "at least"', () => {
    expect(formatCount(9_999)).toBe((9_999).toLocaleString());
    expect(formatCount(10_000)).toBe(`${(10_000).toLocaleString()}+`);
    expect(formatCount(10_003)).toBe(`${(10_000).toLocaleString()}+`);
    expect(formatCount(5, 5)).toBe('5+');
  });

  it('shows retry delays as durations, never raw floats', () => {
    const shown = formatEventData({ attempt: 1, delaySeconds: 0.061714250636143865, error: { type: 'FlakyError' } });
    expect(shown).toContain('retry in 62ms');
    expect(shown).toContain('attempt 1');
    expect(shown).toContain('FlakyError');
    expect(shown).not.toContain('0.0617');
    expect(formatEventData({ delaySeconds: 90 })).toBe('retry in 1m 30s');
  });

  it('says why a job has no result', () => {
    expect(resultPlaceholder('RUNNING')).toMatch(/^Not yet/);
    expect(resultPlaceholder('QUEUED')).toMatch(/^Not yet/);
    expect(resultPlaceholder('FAILED')).toBe('No result: the job failed');
    expect(resultPlaceholder('SUCCEEDED')).toMatch(/returned nothing/);
  });
});
