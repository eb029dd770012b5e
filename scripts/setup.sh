#!/usr/bin/env bash
# Makes this machine ready to run the service or its whole test suite,
# installing only what is missing; repeated, it takes a couple of seconds.
#
#   scripts/setup.sh start   (npm start)  pnpm as pinned by package.json's
#                            "packageManager", then the workspace (pnpm install)
#   scripts/setup.sh test    (npm test, .ci/run)  the same, plus the Debian
#                            packages the suite runs for real, and PostgreSQL at
#                            127.0.0.1:5432 and Redis at 127.0.0.1:6379 started
#                            when they do not answer
#
# As root it installs (npm install -g, apt-get with one `apt-get update` at
# most) and starts services. Otherwise the first missing piece stops it with
# the exact command to run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE="${1:-}"
case "$MODE" in
  start|test) ;;
  *) echo "usage: scripts/setup.sh start|test" >&2; exit 2 ;;
esac

# .ci/run runs `npm test` with npm_config_loglevel=silent so that nothing
# follows the suite's closing line; what fails here must still say why.
unset npm_config_loglevel

step () { printf '\n==> %s\n' "$*"; }
fail () { printf '\nscripts/setup.sh: ERROR: %b\n' "$*" >&2; exit 1; }
is_root () { [ "$(id -u)" -eq 0 ]; }
# The nearest existing ancestor of $1 is writable (npm creates the rest).
writable () { local dir="$1"; while [ ! -e "$dir" ]; do dir="$(dirname "$dir")"; done; [ -w "$dir" ]; }

# --- pnpm ----------------------------------------------------------------------
PNPM_VERSION="$(node -e '
  const pm = JSON.parse(require("fs").readFileSync("package.json", "utf8")).packageManager || ""
  const m = /^pnpm@([^+]+)/.exec(pm)
  if (!m) { console.error("package.json: no \"packageManager\": \"pnpm@<version>\""); process.exit(1) }
  console.log(m[1])
')"
step "pnpm ${PNPM_VERSION}"
# Any pnpm of the pinned major will do: pnpm itself switches to the exact
# version in packageManager.
FOUND="$(pnpm --version 2>/dev/null || true)"
if [ "${FOUND%%.*}" != "${PNPM_VERSION%%.*}" ]; then
  echo "${FOUND:+pnpm ${FOUND} is not pnpm ${PNPM_VERSION%%.*}}${FOUND:-pnpm is not installed} (node $(node --version), npm $(npm --version))"
  NPM_PREFIX="$(npm prefix -g)"
  if ! writable "$NPM_PREFIX/lib/node_modules" || ! writable "$NPM_PREFIX/bin"; then
    fail "npm installs global packages into ${NPM_PREFIX}, which $(id -un) cannot write; run\n  sudo npm install -g pnpm@${PNPM_VERSION}\nthen this command again."
  fi
  npm install -g "pnpm@${PNPM_VERSION}"
  hash -r
  command -v pnpm >/dev/null 2>&1 \
    || fail "pnpm was installed into ${NPM_PREFIX}/bin, which is not on PATH; run\n  export PATH=\"${NPM_PREFIX}/bin:\$PATH\"\nthen this command again."
  FOUND="$(pnpm --version)"
fi
echo "pnpm ${FOUND} at $(command -v pnpm)"

if [ "$MODE" = test ]; then
  # --- Debian packages -----------------------------------------------------------
  # need <command-or-package> <package>: queue <package> unless the command is on
  # PATH or the package is installed.
  MISSING=()
  installed () { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
  need () {
    if command -v "$1" >/dev/null 2>&1 || installed "$1" || installed "$2"; then return 0; fi
    echo "missing: $1 (Debian package $2)"
    MISSING+=("$2")
  }
  step "Debian packages"
  need pg_isready postgresql-client
  need pg_ctlcluster postgresql-common
  need redis-cli redis-tools
  need redis-server redis-server               # also started by the Redis fault tests
  need ffmpeg ffmpeg                           # media scanner and Python client tests make WebM/fMP4 with it
  need python3-websockets python3-websockets   # the Python client (clients/python) runs on Debian's python3
  need python3-jwt python3-jwt                 # its token-mode tests sign operator tokens as a platform backend does
  need python3-pytest python3-pytest           # runs the Python client's tests (scripts/run-tests.mjs)
  need chromium chromium                       # the console's browser test (playwright-core drives Debian's Chromium)
  need nginx nginx-light                       # deploy tests: deploy/nginx in front of a cluster
  need promtool prometheus                     # deploy tests: promtool and a Prometheus scraping a cluster
  need script bsdutils                         # a pseudo-terminal for the test of what `npm start` prints
  if [ "${#MISSING[@]}" -eq 0 ]; then
    echo "all present"
  elif ! command -v apt-get >/dev/null 2>&1; then
    fail "missing: ${MISSING[*]} (Debian package names). This script installs them with apt-get on Debian 12; install the equivalents with your package manager."
  elif ! is_root; then
    fail "missing Debian packages: ${MISSING[*]}; run\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${MISSING[*]}\nthen this command again."
  else
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"
  fi

  # --- PostgreSQL ------------------------------------------------------------------
  # The tests connect as postgres without a password (trust) unless
  # TEST_DATABASE_URL names another server; that one is not ours to start.
  DB_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if [ -z "${TEST_DATABASE_URL:-}" ]; then
    step "PostgreSQL at 127.0.0.1:5432"
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
      [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql)" ] \
        || fail "PostgreSQL does not answer at 127.0.0.1:5432 and no cluster exists in /etc/postgresql; run\n  sudo apt-get install -y postgresql\nthen this command again (or point TEST_DATABASE_URL at a server)."
      PG_VERSION="$(ls /etc/postgresql | sort -V | tail -n 1)"
      is_root || fail "PostgreSQL does not answer at 127.0.0.1:5432; start it:\n  sudo pg_ctlcluster --skip-systemctl-redirect ${PG_VERSION} main start"
      echo "not accepting connections; starting cluster ${PG_VERSION}/main"
      pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start || echo "pg_ctlcluster exited with $?; waiting anyway"
      for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 1
      done
      pg_isready -q -h 127.0.0.1 -p 5432 || fail "PostgreSQL ${PG_VERSION}/main did not accept connections at 127.0.0.1:5432 within 30 s (see /var/log/postgresql/)"
    fi
    pg_isready -h 127.0.0.1 -p 5432
  fi
  if ! PGCONNECT_TIMEOUT=5 psql -w -Atq "$DB_URL" -c 'select 1' >/dev/null </dev/null; then
    if [ -n "${TEST_DATABASE_URL:-}" ]; then where="the server of TEST_DATABASE_URL"; else where="127.0.0.1:5432 as postgres without a password (trust)"; fi
    echo "WARNING: cannot log in to ${where}; the database tests will fail" >&2
  fi

  # --- Redis ---------------------------------------------------------------------
  if [ -z "${TEST_REDIS_URL:-}" ]; then
    step "Redis at 127.0.0.1:6379"
    redis_up () { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
    if ! redis_up; then
      REDIS_START=(redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/setup.log)
      is_root || fail "Redis does not answer at 127.0.0.1:6379; start it:\n  sudo mkdir -p /var/lib/redis /var/log/redis && sudo $(printf '%q ' "${REDIS_START[@]}")"
      echo "not answering; starting redis-server"
      mkdir -p /var/lib/redis /var/log/redis
      "${REDIS_START[@]}" || echo "redis-server exited with $?; waiting anyway"
      for _ in $(seq 1 15); do
        redis_up && break
        sleep 1
      done
      redis_up || { tail -n 20 /var/log/redis/setup.log >&2 2>/dev/null || true; fail "Redis did not answer PING at 127.0.0.1:6379 within 15 s (see /var/log/redis/setup.log)"; }
    fi
    echo "127.0.0.1:6379 - PONG"
  fi
fi

# --- The workspace -------------------------------------------------------------------
# In CI the lockfile is the contract; on a developer's machine pnpm may update
# it after a package.json edit, as a plain `pnpm install` would.
step "pnpm install"
if [ -n "${CI:-}" ]; then pnpm install --frozen-lockfile; else pnpm install; fi
