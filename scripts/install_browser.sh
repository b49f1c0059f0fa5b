#!/bin/sh
# Install Debian's chromium for the dashboard's browser test (driven by Playwright's Python
# package with executable_path=/usr/bin/chromium; never `playwright install`). Idempotent.
set -eu
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser.sh: need root to apt-get install chromium" >&2
    exit 1
fi
apt-get update
apt-get install -y chromium
