#!/usr/bin/env bash
# Installs what building, running and testing Pilothouse needs on Debian 12 /
# Ubuntu, and only what is missing. Run as root (make does it for you), or
# it prints the one apt-get line to run.
#   scripts/setup.sh [build|test|bench|all]
set -euo pipefail

what="${1:-test}"
build_pkgs=(build-essential cmake ninja-build ccache pkg-config git
            qt6-base-dev
            libqt6sql6-psql libqt6sql6-sqlite libhiredis-dev qtkeychain-qt6-dev
            qt6-svg-dev qt6-qpa-plugins libyaml-dev)
test_pkgs=(postgresql-15 postgresql-client-15 redis-server redis-tools python3 python3-yaml
           docker.io docker-compose debootstrap xauth xvfb clang-format
           dbus gnome-keyring docker-registry openssl python3-jwt python3-cryptography
           imagemagick openssh-client openssh-server)
bench_pkgs=(wrk nginx-light python3-flask gunicorn python3-fastapi uvicorn procps)

case "$what" in
  build) wanted=("${build_pkgs[@]}") ;;
  test)  wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  all)   wanted=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 64 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: not root; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their services here: tests start their own servers.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
