#!/usr/bin/env bash
# Makes sure the fault tier can step a redis-server's clock (RELIABILITY C2/C3), like
# ensure-redis.sh does for redis-server:
# - libfaketime.so.1 present (Debian/Ubuntu package `faketime`), or FAKETIME_LIB set: fine.
# - else, as root with apt-get: install `faketime`.
# - else: stop and say how to get it (or FAULTS_WITHOUT_FAKETIME=1 runs the tier without C2/C3,
#   which the report then lists as not run).
set -euo pipefail

have_libfaketime() {
  if [[ -n "${FAKETIME_LIB:-}" ]]; then [[ -f "$FAKETIME_LIB" ]]; return; fi
  compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || compgen -G '/usr/lib/faketime/libfaketime.so.1' >/dev/null ||
    compgen -G '/usr/local/lib/faketime/libfaketime.so.1' >/dev/null || compgen -G '/usr/lib64/faketime/libfaketime.so.1' >/dev/null
}

if have_libfaketime; then
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "ratelock fault tier: libfaketime not found; installing it with apt-get (apt-get install -y faketime)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y faketime
  exit 0
fi

if [[ "${FAULTS_WITHOUT_FAKETIME:-}" == "1" ]]; then
  echo "ratelock fault tier: libfaketime not found; FAULTS_WITHOUT_FAKETIME=1, so the clock checks C2/C3 are not run" >&2
  exit 0
fi

cat >&2 <<'MESSAGE'
ratelock fault tier: libfaketime (package `faketime`) is required for the clock checks C2/C3.
  Install it:
    Debian/Ubuntu:  sudo apt-get install -y faketime
  or point FAKETIME_LIB at libfaketime.so.1, or run without those two checks:
    FAULTS_WITHOUT_FAKETIME=1 npm run test:faults
MESSAGE
exit 1
