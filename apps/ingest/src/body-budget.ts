/** Bodies up to this size count as small: a slice of the budget is kept for them. */
export const SMALL_BODY_BYTES = 64 * 1024;
/** The share of the budget large bodies cannot take (1/8): ordinary deliveries' room. */
const SMALL_BODY_SHARE = 8;

/**
 * The request-body bytes all requests hold in memory at once, against a ceiling
 * (`MAX_INFLIGHT_BODY_BYTES`). Bodies are reserved before they are read: a request that does not
 * fit is refused (503 `overloaded`) instead of buffered, so many slow uploads cannot grow the
 * process without bound. Requests whose body is over {@link SMALL_BODY_BYTES} may fill only
 * seven eighths of it, so an attack with large slow uploads cannot starve ordinary (small)
 * deliveries; any request fits while nothing is held. One event loop: no locking.
 */
export class BodyBudget {
  readonly limit: number;
  readonly #largeLimit: number;
  #held = 0;

  constructor(limit: number) {
    this.limit = limit;
    this.#largeLimit = limit - Math.floor(limit / SMALL_BODY_SHARE);
  }

  /** Bytes reserved now. */
  get held(): number {
    return this.#held;
  }

  /**
   * Reserves `bytes` for a request that will then hold `total` bytes in all (its declared length,
   * or what it has sent so far); false, with nothing reserved, when they do not fit.
   */
  take(bytes: number, total: number): boolean {
    if (!this.fits(bytes, total)) return false;
    this.#held += bytes;
    return true;
  }

  /** Whether {@link take} would reserve these bytes now (reserving nothing). */
  fits(bytes: number, total: number): boolean {
    const after = this.#held + bytes;
    if (after > this.limit) return false;
    return !(total > SMALL_BODY_BYTES && after > this.#largeLimit && this.#held > 0);
  }

  /** Gives back bytes reserved with {@link take}. */
  give(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }
}
