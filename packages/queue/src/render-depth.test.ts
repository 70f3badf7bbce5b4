import { describe, expect, it } from 'vitest';
import { nestedDeeperThan } from './render-depth.js';

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

describe('nestedDeeperThan', () => {
  it('counts objects and arrays, scalars at depth 0', () => {
    expect(nestedDeeperThan(42, 0)).toBe(false);
    expect(nestedDeeperThan(null, 0)).toBe(false);
    expect(nestedDeeperThan({}, 0)).toBe(true);
    expect(nestedDeeperThan(nested(10), 10)).toBe(false);
    expect(nestedDeeperThan(nested(11), 10)).toBe(true);
  });

  it('follows the deepest branch, not the first', () => {
    expect(nestedDeeperThan({ a: 1, b: [2], c: { d: nested(5) } }, 6)).toBe(true);
    expect(nestedDeeperThan({ a: 1, b: [2], c: { d: nested(5) } }, 7)).toBe(false);
  });

  it('walks 100,000 levels without a stack of its own', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(nestedDeeperThan(deep, 1000)).toBe(true);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
  });
});
