// BullMQ's built Lua scripts ship without type declarations under dist/cjs.
declare module 'bullmq/dist/cjs/scripts/addStandardJob-9.js' {
  export const addStandardJob: { name: string; content: string; keys: number };
}
declare module 'bullmq/dist/cjs/scripts/moveToFinished-14.js' {
  export const moveToFinished: { name: string; content: string; keys: number };
}
declare module 'bullmq/dist/cjs/version.js' {
  export const version: string;
}
