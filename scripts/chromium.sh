#!/usr/bin/env bash
# chromium.sh: make sure Debian's Chromium is installed for the usage dashboard's browser test.
#
#   scripts/chromium.sh install    install it with apt-get when missing (as root, or with
#                                  passwordless sudo); otherwise say how, and fail
#
# ZL_CHROMIUM names another Chromium binary; then nothing is installed.
set -euo pipefail
want=${ZL_CHROMIUM:-/usr/bin/chromium}
[ -x "$want" ] && exit 0
if [ -n "${ZL_CHROMIUM:-}" ]; then
  echo "ZL_CHROMIUM=$ZL_CHROMIUM is not an executable" >&2; exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "Chromium is needed by the dashboard's browser test: run 'sudo apt-get install -y chromium'" \
    "(or set ZL_CHROMIUM to a Chromium binary)" >&2
  exit 1
fi
command -v apt-get >/dev/null || { echo "no apt-get: install Chromium and set ZL_CHROMIUM" >&2; exit 1; }
echo "installing Debian's chromium (apt-get) for the dashboard's browser test" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x "$want" ] || { echo "apt-get installed chromium, but $want is missing" >&2; exit 1; }
