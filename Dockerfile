# syntax=docker/dockerfile:1
# One Dockerfile for every app: docker build --build-arg APP=ingest|worker|dashboard .
# Stage 1 installs and builds the workspace; stage 2 keeps only the app's production files.

FROM node:20-bookworm-slim AS build
ENV CI=true TURBO_TELEMETRY_DISABLED=1
RUN npm install -g pnpm@12.4.2
WORKDIR /repo
# The whole workspace (see .dockerignore): the lockfile covers every package in it.
COPY . .
RUN pnpm install --frozen-lockfile --ignore-scripts
ARG APP=ingest
RUN pnpm turbo run build --filter=@groq-webhooks/${APP}... \
 && pnpm --filter=@groq-webhooks/${APP} deploy --prod --legacy /out

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /out /app
# The official image's unprivileged user.
USER node
CMD ["node", "dist/main.js"]
