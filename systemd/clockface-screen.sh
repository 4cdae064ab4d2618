#!/usr/bin/env bash
# Show the kiosk's local page full screen: Chromium in kiosk mode inside cage.
# Started by clockface-screen.service as the clockface-screen user on tty1.
# Usage: clockface-screen [URL]   (default http://127.0.0.1:8471/)
set -euo pipefail

url="${1:-http://127.0.0.1:8471/}"
hostport="${url#*://}"
hostport="${hostport%%/*}"
host="${hostport%%:*}"
port="${hostport##*:}"
if [[ "$port" == "$hostport" ]]; then
    port=80
fi

# Wait for the kiosk's page, so the first thing on the screen is not an error page.
until (exec 3<>"/dev/tcp/${host}/${port}") 2>/dev/null; do
    sleep 2
done

browser=""
for candidate in chromium-browser chromium; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser="$(command -v "$candidate")"
        break
    fi
done
if [[ -z "$browser" ]]; then
    echo "clockface-screen: no chromium-browser or chromium: sudo apt install chromium-browser" >&2
    exit 1
fi

profile="${HOME:-/tmp}/.clockface-screen"
mkdir -p "$profile"
exec cage -s -- "$browser" \
    --kiosk --incognito --noerrdialogs --disable-infobars --no-first-run \
    --disable-session-crashed-bubble --disable-features=Translate \
    --check-for-update-interval=31536000 --ozone-platform=wayland \
    --user-data-dir="$profile" "$url"
