import { describe, expect, it } from 'vitest';
import { BodyBudget, SMALL_BODY_BYTES } from './body-budget.js';

describe('BodyBudget', () => {
  it('reserves up to its limit and refuses what does not fit, taking nothing then', () => {
    const budget = new BodyBudget(1000);
    expect(budget.take(600, 600)).toBe(true);
    expect(budget.fits(500, 500)).toBe(false);
    expect(budget.take(500, 500)).toBe(false);
    expect(budget.fits(400, 400)).toBe(true);
    expect(budget.held).toBe(600);
    expect(budget.take(400, 400)).toBe(true);
    expect(budget.held).toBe(1000);
    budget.give(600);
    expect(budget.held).toBe(400);
    budget.give(10_000);
    expect(budget.held).toBe(0);
  });

  it('keeps the last eighth for small bodies: large ones cannot starve them', () => {
    const large = SMALL_BODY_BYTES + 1;
    const budget = new BodyBudget(8 * large);
    for (let i = 0; i < 7; i++) expect(budget.take(large, large)).toBe(true);
    // An eighth left: a large body is refused, small ones still fit in it.
    expect(budget.take(large, large)).toBe(false);
    // A chunked body counts as large once its total passes the threshold.
    expect(budget.take(100, large)).toBe(false);
    expect(budget.take(1000, 1000)).toBe(true);
    expect(budget.take(large - 1000, SMALL_BODY_BYTES)).toBe(true);
    expect(budget.held).toBe(budget.limit);
  });

  it('takes any body up to the limit while nothing is held', () => {
    const budget = new BodyBudget(SMALL_BODY_BYTES * 2);
    expect(budget.take(SMALL_BODY_BYTES * 2, SMALL_BODY_BYTES * 2)).toBe(true);
  });
});
