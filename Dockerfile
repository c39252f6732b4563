# One image for every Seckill Mesh process; the container's arguments pick it:
#   dist/inventory.mjs | dist/order.mjs | dist/order-writer.mjs | dist/gateway.mjs | dist/migrate.mjs
# (k8s/base sets them per Deployment). Runs as uid 10001 on a read-only root
# file system: nothing is written outside /tmp, and the gateway's
# purchase-token keys come from a Secret mounted at PURCHASE_TOKEN_KEYS_DIR.

# Node 22 LTS, the line CI also runs the services' tests on (tools/ci/node22.sh).
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
COPY cli/package.json cli/
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build

FROM ${NODE_IMAGE} AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
COPY cli/package.json cli/
# Only what the bundles import at run time: no build tools (esbuild, tsx and
# TypeScript are dev dependencies), and not the workspaces (the bundles inline
# the SDK; the CLI is not part of the image).
RUN npm ci --omit=dev --workspaces=false --no-audit --no-fund --ignore-scripts

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# npm packages stay imports of the bundles, resolved from node_modules.
COPY --from=runtime-deps /app/node_modules node_modules
COPY --from=build /app/dist dist
# Read at run time from the repository root, which the services find by
# walking up to proto/seckill/v1 (services/common/assets.ts): the contract
# (reflection), the Lua scripts, the default rate limit file and Envoy's
# rate limit service protos.
COPY package.json ./
COPY proto proto
COPY services/inventory/lua services/inventory/lua
COPY gateway/ratelimit/*.lua gateway/ratelimit/
COPY gateway/ratelimit.yaml gateway/ratelimit.yaml
COPY gateway/ratelimit/vendor gateway/ratelimit/vendor
USER 10001:10001
# The bounded heap of `npm start`: RSS stays flat under overload.
ENTRYPOINT ["node", "--max-old-space-size=128", "--max-semi-space-size=16"]
CMD ["dist/inventory.mjs"]
