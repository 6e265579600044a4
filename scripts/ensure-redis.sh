#!/usr/bin/env bash
# Makes sure the tests can reach Redis before they start:
# - REDIS_URL set: the tests use that server, nothing to do here.
# - redis-server (and redis-cli, for the throwaway cluster) on PATH: fine.
# - else, as root with apt-get: install redis-server (Debian/Ubuntu CI images).
# - else: stop at once and say how to get one.
set -euo pipefail

if [[ -n "${REDIS_URL:-}" ]]; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "ratelock tests: REDIS_URL is set but redis-server is not on PATH: the fault tests (which start" >&2
    echo "  their own servers) will fail, and so will the cluster tests unless REDIS_CLUSTER_NODES=host:port,..." >&2
    echo "  names the masters of an existing cluster." >&2
  fi
  exit 0
fi

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "ratelock tests: redis-server not found; installing it with apt-get (apt-get install -y redis-server)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y redis-server
  exit 0
fi

cat >&2 <<'MESSAGE'
ratelock tests: redis-server (with redis-cli) is required and was not found on PATH.
  Install it:
    Debian/Ubuntu:  sudo apt-get install -y redis-server
    macOS:          brew install redis
  or use an existing server that the tests may flush (logical DBs 1..n):
    REDIS_URL=redis://host:port npm test
  With REDIS_URL, the cluster tests need REDIS_CLUSTER_NODES=host:port,... (the masters of an
  existing cluster); a throwaway cluster is started only when redis-server exists.
MESSAGE
exit 1
