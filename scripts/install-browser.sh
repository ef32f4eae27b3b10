#!/bin/sh
# The browser test's browser: Debian's chromium package (no browser download by Playwright).
# Prints the executable's path; exits non-zero with the reason when it cannot be installed
# (no apt-get, not root and no sudo, no network): the test is then skipped with that reason.
set -eu
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no chromium on PATH and no apt-get to install Debian's chromium" >&2; exit 1
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""
elif sudo -n true 2>/dev/null; then SUDO="sudo -n"
else echo "no chromium on PATH; installing it needs root (apt-get install chromium)" >&2; exit 1
fi
$SUDO apt-get update -qq >&2 || { echo "apt-get update failed (no network?)" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2 \
    || { echo "apt-get install chromium failed" >&2; exit 1; }
command -v chromium
