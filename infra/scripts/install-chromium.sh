#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/e2e/test_web_browser.py), idempotently:
# a no-op when /usr/bin/chromium already runs. Playwright drives this browser; its own
# `playwright install` downloads from a CDN and is never used.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if "$CHROMIUM" --version >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "install-chromium: need root and apt-get to install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version
