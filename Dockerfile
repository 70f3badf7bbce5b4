# syntax=docker/dockerfile:1
# One Dockerfile for every app: docker build --build-arg APP=ingest|worker|dashboard .
# Stage 1 installs and builds the workspace; stage 2 keeps only the app's production files. The
# worker image also carries your handlers package (packages/handlers) with its own dependencies.
ARG APP=ingest

FROM node:20-bookworm-slim AS build
ENV CI=true TURBO_TELEMETRY_DISABLED=1
RUN npm install -g pnpm@12.4.2
WORKDIR /repo
# The whole workspace (see .dockerignore): the lockfile covers every package in it.
COPY . .
RUN pnpm install --frozen-lockfile --ignore-scripts
ARG APP
# The worker's handlers (packages/handlers) are type-checked too: a map missing a handler fails
# the build. Everything is built before anything is deployed: a `pnpm` command run after a
# `deploy --prod` re-installs the workspace without its dev dependencies.
RUN pnpm turbo run build --filter=@groq-webhooks/${APP}... \
 && if [ "$APP" = worker ]; then pnpm turbo run typecheck --filter=@groq-webhooks/handlers; fi
# The app with its production dependencies; the worker's handlers with theirs beside it.
RUN pnpm --filter=@groq-webhooks/${APP} deploy --prod --legacy /out \
 && if [ "$APP" = worker ]; then \
      pnpm --filter=@groq-webhooks/handlers deploy --prod --legacy /out/handlers; \
    fi

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /out /app
# The official image's unprivileged user.
USER node
CMD ["node", "dist/main.js"]

# The final stage, chosen by APP. The worker runs the handlers package it carries; HANDLERS_MODULE
# set at run time names another module instead.
FROM runtime AS app-ingest
FROM runtime AS app-dashboard
FROM runtime AS app-worker
ENV HANDLERS_MODULE=/app/handlers/src/index.ts
FROM app-${APP}
