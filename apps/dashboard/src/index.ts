// The dashboard is run as its bin (`groq-webhooks-dashboard`); in code, its Hono app.
export { BOARD_PATH, createApp, type DashboardDeps } from './app.js';
