import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

/** Realm the browser shows in its login prompt. */
export const AUTH_REALM = 'groq-webhooks';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * The credential a request carries: a bearer token, or the password of HTTP Basic auth (any
 * user name, so browsers can log in). Undefined when there is none or it is malformed.
 */
export function presentedToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(authorization);
  if (match === null) return undefined;
  const [, scheme, value] = match;
  if (value === undefined) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

/**
 * Requires `ADMIN_TOKEN` on every request it guards: `Authorization: Bearer <token>` or Basic
 * auth with the token as password. Both sides are hashed first, so the comparison takes the
 * same time whatever the lengths; a miss is a 401 that makes browsers ask for credentials.
 */
export function adminAuth(token: string): MiddlewareHandler {
  const expected = digest(token);
  return async function requireAdminToken(c, next) {
    const presented = presentedToken(c.req.header('authorization'));
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) {
      await next();
      return;
    }
    c.header('WWW-Authenticate', `Basic realm="${AUTH_REALM}", charset="UTF-8"`);
    c.header('Cache-Control', 'no-store');
    return c.json({ error: 'Unauthorized', code: 'unauthorized' }, 401);
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses state-changing requests a browser sends on behalf of another site (the stored Basic
 * credentials would otherwise ride along): `Sec-Fetch-Site` must be `same-origin` (or `none`, a
 * user action), else `Origin` must name this host. Requests with neither header do not come
 * from a browser page (curl, scripts) and pass.
 */
export function sameOriginOnly(): MiddlewareHandler {
  return async function rejectCrossSite(c, next) {
    if (SAFE_METHODS.has(c.req.method)) {
      await next();
      return;
    }
    const site = c.req.header('sec-fetch-site');
    const origin = c.req.header('origin');
    const allowed =
      (site === undefined || site === 'same-origin' || site === 'none') &&
      (origin === undefined || originMatchesHost(origin, c.req.header('host')));
    if (!allowed) {
      return c.json({ error: 'Cross-site request refused', code: 'cross_site_request' }, 403);
    }
    await next();
  };
}

function originMatchesHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || origin === 'null') return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
