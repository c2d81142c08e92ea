#!/usr/bin/env bash
# Debian packages the tests and operators use beside the Python stack (kcat, Maven, Prometheus to check the
# dashboards' queries, Chromium for the web dashboard's test); installs only what is missing.
set -euo pipefail
packages=()
command -v kcat >/dev/null || packages+=(kcat)
command -v mvn >/dev/null || packages+=(maven)
command -v prometheus >/dev/null || packages+=(prometheus)
command -v chromium >/dev/null || packages+=(chromium)
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${packages[*]}; install them with: sudo apt-get install ${packages[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${packages[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
