#!/bin/sh
# Writes the production artifact to <dir>: the CLI package (`dist/bin.js`), its
# production dependencies only, the workspace packages it uses copied in (not
# linked), and `migrations/` next to its package.json, where the CLI looks for
# them. `seeds/` stays out: it is development data with a well-known id and
# key, and `seed` refuses to run in production anyway. deploy/Dockerfile runs exactly this, and so does the artifact
# test (packages/deploy-tests), so a runtime dependency missing from a
# package.json fails there, not in production. Run `pnpm build` first.
#
#   sh deploy/build-artifact.sh /tmp/streaming-service   # then: node /tmp/streaming-service/dist/bin.js api
set -eu

[ "$#" -eq 1 ] || { echo "usage: $0 <output dir (missing or empty)>" >&2; exit 2; }
case "$1" in /*) out="$1" ;; *) out="$(pwd)/$1" ;; esac
cd "$(dirname "$0")/.."
[ -f packages/cli/dist/bin.js ] || { echo "$0: packages/cli/dist/bin.js is missing: run pnpm build first" >&2; exit 1; }

# --legacy: the workspace links its packages (no inject-workspace-packages);
# the legacy deploy copies them from their `files` (dist/) instead.
pnpm --filter @streaming-service/cli deploy --prod --legacy "$out"
cp -R migrations "$out/"
# pnpm also links the deployed package itself into the hoisted node_modules,
# pointing back into the workspace: nothing resolves it, and in the image it
# would dangle. The artifact test checks that no link leaves the artifact.
rm -f "$out/node_modules/.pnpm/node_modules/@streaming-service/cli"
