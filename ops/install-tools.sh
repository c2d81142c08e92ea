#!/usr/bin/env bash
# Debian packages beside the Python stack, given by the command that needs them: Maven fetches the Kafka and
# registry jars (`make run`); kcat, Prometheus (promtool checks dashboards and alerts), Chromium (the web
# dashboard's browser test) and docker-compose (checks docker-compose.yml) serve `make test`. Installs only
# what is missing; without root, says what to run.
set -euo pipefail
packages=()
for package in "$@"; do
  command="$package"
  [ "$package" = maven ] && command=mvn
  command -v "$command" >/dev/null || packages+=("$package")
done
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${packages[*]}; install them with: sudo apt-get install ${packages[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${packages[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
