// The CLI is run as its bin (`groq-webhooks`); in code, the same program.
export { run } from './program.js';
