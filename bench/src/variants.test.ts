import { describe, expect, it } from 'vitest';
import { rotated } from './variants.js';

describe('rotated', () => {
  it('starts each round with the next configuration, every one once per round', () => {
    const runs = ['baseline', 'fast', 'trace1'];
    expect([1, 2, 3, 4].map((round) => rotated(runs, round - 1))).toEqual([
      ['baseline', 'fast', 'trace1'],
      ['fast', 'trace1', 'baseline'],
      ['trace1', 'baseline', 'fast'],
      ['baseline', 'fast', 'trace1'],
    ]);
  });

  it('leaves an empty list empty', () => {
    expect(rotated([], 3)).toEqual([]);
  });
});
