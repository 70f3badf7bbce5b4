export { BOARD_PATH, createApp, type DashboardDeps } from './app.js';
export { AUTH_REALM, adminAuth, presentedToken, sameOriginOnly } from './auth.js';
export {
  type DashboardHistory,
  type EventsApiDeps,
  eventsApi,
  HISTORY_DISABLED,
} from './events-api.js';
export { EVENTS_PATH, eventsPage } from './events-page.js';
