#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium and its matching chromedriver are on this machine
# (the UI tests drive them through selenium; no browser is ever downloaded by a test).
# Installs Debian's packages when missing and we are root.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: installing Debian's chromium and chromium-driver packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
  exit 0
fi
echo "ensure-chromium: no /usr/bin/chromium + /usr/bin/chromedriver; install them (apt-get install chromium chromium-driver) and re-run" >&2
exit 1
