export { BOARD_PATH, createApp, type DashboardDeps } from './app.js';
export { AUTH_REALM, adminAuth, presentedToken, sameOriginOnly } from './auth.js';
