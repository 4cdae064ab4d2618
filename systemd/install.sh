#!/usr/bin/env bash
# Install the clockface kiosk on 64-bit Raspberry Pi OS, Pi 4 or Pi 5: Trixie (Python
# 3.13) or Bookworm (Python 3.11). Any other release is refused before anything changes.
#
#   sudo systemd/install.sh             install or update (run it again at any time)
#   systemd/install.sh --dry-run        print every action instead of doing it
#
# Options:
#   --dry-run        print each action ("[dry-run] ...") and change nothing
#   --root DIR       with --dry-run: plan for a system image at DIR (what exists is
#                    looked up under DIR)
#   --with-central   also install the central service (clockface-central.service)
#   --no-screen      no browser screen (no cage, no chromium, no clockface-screen.service)
#
# What it does, each step only when needed (idempotent):
#   1. apt packages (after apt-get update): picamera2, gpiozero + lgpio, python3-venv,
#      cage and Chromium
#   2. the system user clockface (groups video, gpio) that runs the kiosk and the sync
#      agent, and clockface-screen (groups video, render, input) for the browser
#   3. a virtual environment with --system-site-packages (picamera2 and libcamera come
#      from apt) in /opt/clockface/venv, holding exactly the versions uv.lock resolved
#      for this release (uv export --group pi-bookworm or pi-trixie: numpy 1.x on
#      Bookworm, 2.x on Trixie, as the apt picamera2/simplejpeg were built against),
#      checked against the lock's hashes, wheels only (face-recognition-models, model
#      files and no code to compile, is the one sdist); then clockface itself from this
#      checkout. uv (pinned) lives in /opt/clockface/tools; its cache is cleaned after.
#   4. default config files with comments in /etc/clockface, never overwriting one
#      that exists, an empty kiosk-token (the central service's token goes there), and
#      template-key (central-template-key with --with-central): 32 random bytes, mode
#      0600, that seal the face templates at rest (the units' LoadCredential=); never
#      overwritten (`clockface kiosk rotate-key` / `central rotate-key` replace a key)
#   5. the systemd units, installed and enabled (start them after `kiosk selftest`)
set -euo pipefail

DRY_RUN=0
ROOT=""
WITH_CENTRAL=0
WITH_SCREEN=1

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while (($#)); do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --root)
            [[ $# -ge 2 ]] || { echo "install.sh: --root needs a folder" >&2; exit 2; }
            ROOT="${2%/}"
            shift
            ;;
        --root=*) ROOT="${1#--root=}"; ROOT="${ROOT%/}" ;;
        --with-central) WITH_CENTRAL=1 ;;
        --no-screen) WITH_SCREEN=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ -n "$ROOT" && "$DRY_RUN" -eq 0 ]]; then
    echo "install.sh: --root only plans (use it with --dry-run)" >&2
    exit 2
fi
if [[ -n "$ROOT" && ! -d "$ROOT" ]]; then
    echo "install.sh: --root $ROOT is not a folder" >&2
    exit 2
fi
if [[ "$DRY_RUN" -eq 0 && "$(id -u)" -ne 0 ]]; then
    echo "install.sh: run it as root (sudo $0), or with --dry-run to see the plan" >&2
    exit 1
fi

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNITS_SRC="$CHECKOUT/systemd"
PREFIX=/opt/clockface
VENV="$PREFIX/venv"
ETC=/etc/clockface
STATE=/var/lib/clockface
UNIT_DIR=/etc/systemd/system
USER_NAME=clockface
SCREEN_USER=clockface-screen
CENTRAL_USER=clockface-central
TOOLS="$PREFIX/tools"
REQUIREMENTS="$PREFIX/requirements.txt"
# The uv that reads uv.lock on the Pi (the lock's format needs a recent one).
UV_VERSION=0.13.9
# The supported releases (/etc/os-release VERSION_CODENAME) and the python3 each has;
# each installs the lock's dependency group pi-CODENAME.
declare -A PYTHON_OF=([bookworm]=3.11 [trixie]=3.13)

[[ -f "$CHECKOUT/pyproject.toml" ]] || {
    echo "install.sh: $CHECKOUT is not a clockface checkout (no pyproject.toml)" >&2
    exit 1
}

# --------------------------------------------------------------------------- helpers

say() {
    printf '%s\n' "$*"
}

# One word as a shell would need it: bare when safe, else in single quotes.
quote() {
    if [[ "$1" =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

# Run a command, or print it in a dry run. Every change goes through here.
run() {
    local line word
    line="$( ((DRY_RUN)) && printf '[dry-run]' || printf '+')"
    for word in "$@"; do
        line+=" $(quote "$word")"
    done
    say "$line"
    if ((!DRY_RUN)); then
        "$@"
    fi
}

# A path as it is on the target system (under --root when planning for an image).
on_target() {
    printf '%s%s' "$ROOT" "$1"
}

has_user() {
    grep -q "^$1:" "$(on_target /etc/passwd)" 2>/dev/null
}

has_group() {
    grep -q "^$1:" "$(on_target /etc/group)" 2>/dev/null
}

ensure_group() {
    if has_group "$1"; then
        say "group $1 exists"
    else
        run groupadd --system "$1"
    fi
}

# ensure_user NAME HOME GROUPS: a system user without a login shell.
ensure_user() {
    local name=$1 home=$2 groups=$3
    if has_user "$name"; then
        say "user $name exists"
        run usermod --append --groups "$groups" "$name"
    else
        run useradd --system --user-group --create-home --home-dir "$home" \
            --shell /usr/sbin/nologin --groups "$groups" "$name"
    fi
}

# write_new DEST MODE WHAT COMMAND...: DEST from COMMAND's output, unless DEST exists.
write_new() {
    local dest=$1 mode=$2 what=$3
    shift 3
    if [[ -e "$(on_target "$dest")" ]]; then
        say "keep $dest (it exists; install.sh never overwrites a config file)"
        return
    fi
    if ((DRY_RUN)); then
        say "[dry-run] write $dest (mode $mode): $what"
        return
    fi
    local tmp
    tmp="$(mktemp "$dest.XXXXXX")"
    if ! "$@" >"$tmp"; then
        rm -f "$tmp"
        echo "install.sh: could not make $dest" >&2
        exit 1
    fi
    chmod "$mode" "$tmp"
    mv "$tmp" "$dest"
    say "+ wrote $dest"
}

kiosk_config() {
    local screen=false
    if ((WITH_SCREEN)); then
        screen=true # clockface-screen.service shows the page the kiosk serves
    fi
    "$VENV/bin/clockface" kiosk default-config |
        sed -e 's|^source = .*|source = "picamera"|' \
            -e "s|^database = .*|database = \"$STATE/kiosk.db\"|" \
            -e "s|^screen = .*|screen = $screen|"
}

central_config() {
    "$VENV/bin/clockface" central default-config |
        sed -e "s|^database = .*|database = \"/var/lib/clockface-central/central.db\"|"
}

empty() {
    :
}

new_key() {
    head -c 32 /dev/urandom
}

# --------------------------------------------------------------------------- checks

codename="$(sed -n 's/^VERSION_CODENAME=//p' "$(on_target /etc/os-release)" 2>/dev/null)" || true
codename="${codename//\"/}"
if [[ -z "$codename" || -z "${PYTHON_OF[$codename]:-}" ]]; then
    echo "install.sh: Raspberry Pi OS '${codename:-unknown}' is not supported: install on" \
        "Trixie or Bookworm (64-bit); nothing was changed" >&2
    exit 1
fi
want_python="${PYTHON_OF[$codename]}"
if [[ -z "$ROOT" ]]; then
    have_python="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
        have_python=none
    if [[ "$have_python" != "$want_python" ]]; then
        echo "install.sh: $codename's python3 should be $want_python, this one is" \
            "$have_python; nothing was changed" >&2
        exit 1
    fi
fi
say "Raspberry Pi OS $codename: Python $want_python, uv.lock's group pi-$codename"
if command -v dpkg >/dev/null 2>&1 && [[ "$(dpkg --print-architecture)" != arm64 ]]; then
    say "warning: not a 64-bit arm64 system: the prebuilt dlib wheel needs 64-bit Raspberry Pi OS"
fi

# --------------------------------------------------------------------------- 1. packages

packages=(python3-picamera2 python3-gpiozero python3-lgpio python3-venv python3-pip)
run apt-get update
if ((WITH_SCREEN)); then
    # Raspberry Pi OS calls it chromium-browser; Debian calls it chromium (asked after
    # apt-get update, so a fresh image's empty package lists don't decide it).
    if apt-cache policy chromium-browser 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        browser=chromium-browser
    else
        browser=chromium
    fi
    say "browser package: $browser"
    packages+=(cage "$browser")
fi
run apt-get install --yes --no-install-recommends "${packages[@]}"

# --------------------------------------------------------------------------- 2. users

ensure_group video
ensure_group gpio
ensure_user "$USER_NAME" "$STATE" video,gpio
if ((WITH_SCREEN)); then
    ensure_group render
    ensure_group input
    ensure_user "$SCREEN_USER" /var/lib/clockface-screen video,render,input
fi
if ((WITH_CENTRAL)); then
    if has_user "$CENTRAL_USER"; then
        say "user $CENTRAL_USER exists"
    else
        run useradd --system --user-group --no-create-home --home-dir /var/lib/clockface-central \
            --shell /usr/sbin/nologin "$CENTRAL_USER"
    fi
fi

# --------------------------------------------------------------------------- 3. the app

if [[ -x "$(on_target "$VENV/bin/python")" ]]; then
    say "virtual environment $VENV exists"
else
    run python3 -m venv --system-site-packages "$VENV"
fi
if [[ -x "$(on_target "$TOOLS/bin/python")" ]]; then
    say "tools environment $TOOLS exists"
else
    run python3 -m venv "$TOOLS"
fi
run "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    "uv==$UV_VERSION"
uv="$TOOLS/bin/uv"
# The lock's runtime set for this release, pinned and hashed (no dev tools, no project).
run "$uv" export --project "$CHECKOUT" --frozen --no-default-groups --group "pi-$codename" \
    --no-emit-project --quiet --output-file "$REQUIREMENTS"
# Exactly that set in the venv (sync removes what is not in it), every file checked
# against its hash; wheels only, but for the model files' sdist.
run "$uv" pip sync --python "$VENV/bin/python" --require-hashes --only-binary :all: \
    --no-binary face-recognition-models "$REQUIREMENTS"
run "$uv" pip install --python "$VENV/bin/python" --no-deps "$CHECKOUT"
run "$uv" cache clean
run install -d -m 0755 "$PREFIX/bin"
if ((WITH_SCREEN)); then
    run install -m 0755 "$UNITS_SRC/clockface-screen.sh" "$PREFIX/bin/clockface-screen"
fi
if ((!DRY_RUN)) && ! "$VENV/bin/python" -c "import picamera2" 2>/dev/null; then
    say "warning: picamera2 does not import in $VENV: check python3-picamera2 and that" \
        "the venv's numpy is the one $codename's simplejpeg was built against"
fi

# --------------------------------------------------------------------------- 4. config

run install -d -m 0755 "$ETC"
write_new "$ETC/kiosk.toml" 0644 \
    "clockface kiosk default-config, with source = \"picamera\", database = $STATE/kiosk.db" \
    kiosk_config
write_new "$ETC/kiosk-token" 0600 "empty, for the central service's token" empty
write_new "$ETC/template-key" 0600 "32 random bytes, the key that seals templates" new_key
if ((WITH_CENTRAL)); then
    write_new "$ETC/central.toml" 0644 "clockface central default-config" central_config
    write_new "$ETC/central-template-key" 0600 \
        "32 random bytes, the key that seals the central service's templates" new_key
fi

# --------------------------------------------------------------------------- 5. units

units=(clockface-kiosk.service clockface-sync.service)
if ((WITH_SCREEN)); then
    units+=(clockface-screen.service)
fi
if ((WITH_CENTRAL)); then
    units+=(clockface-central.service)
fi
for unit in "${units[@]}"; do
    run install -m 0644 "$UNITS_SRC/$unit" "$UNIT_DIR/$unit"
done
run systemctl daemon-reload
run systemctl enable "${units[@]}"

say ""
say "Done. Next:"
say "  sudo -u $USER_NAME $VENV/bin/clockface kiosk selftest --config $ETC/kiosk.toml"
say "  sudo systemctl start ${units[*]}"
say "  journalctl -u clockface-kiosk -f"
say "Commands that read or write templates outside the services (enroll, rotate-key) need"
say "the key the units load: give it as CLOCKFACE_TEMPLATE_KEY_FILE=$ETC/template-key (root)."
