"""The kiosk's configuration: one TOML file, every key with a default and a comment.

    clockface kiosk default-config > /etc/clockface/kiosk.toml   # every key, commented
    clockface kiosk check-config --config /etc/clockface/kiosk.toml
    clockface kiosk run --config /etc/clockface/kiosk.toml

Precedence, lowest first: the defaults below, the file's ``[kiosk]`` table, the
environment (``CLOCKFACE_KIOSK_<KEY>``, e.g. ``CLOCKFACE_KIOSK_TIMEZONE=Europe/Berlin``;
the database also follows ``CLOCKFACE_DB``, as every clockface command does), then the
options given to ``clockface kiosk run``. Unknown keys, wrong types and impossible
values are refused with one line that names the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from clockface.config_values import from_env, from_toml, read_table, to_toml, warn_unknown
from clockface.consent import DEFAULT_RETENTION_DAYS, LEGAL_BASES, MAX_RETENTION_DAYS
from clockface.errors import ConfigError
from kiosk.policy import Mode
from kiosk.settings import KioskSettings, LivenessMode

ENV_PREFIX = "CLOCKFACE_KIOSK_"
DATABASE_ENV = "CLOCKFACE_DB"


@dataclass(frozen=True)
class KioskConfig:
    """Where the kiosk reads frames and writes events, and how it decides."""

    source: str = "camera:0"
    database: str = "clockface.db"
    realtime: bool = False
    screen: bool = False
    screen_port: int = 8471
    screen_bind: str = "127.0.0.1"
    screen_preview: bool = False
    template_key_file: str = ""
    legal_basis: str = "consent"
    legal_basis_note: str = ""
    retention_days: int = DEFAULT_RETENTION_DAYS
    settings: KioskSettings = field(default_factory=KioskSettings)

    def __post_init__(self) -> None:
        if not 0 <= self.screen_port <= 65535:
            raise ValueError(f"screen_port must be 0 to 65535, not {self.screen_port}")
        check_legal_basis(self.legal_basis, self.legal_basis_note)
        if not 1 <= self.retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(
                f"retention_days must be 1 to {MAX_RETENTION_DAYS}, not {self.retention_days}"
            )


def check_legal_basis(basis: str, note: str) -> None:
    """Refuse (ValueError) a legal basis not in LEGAL_BASES, or one other than consent
    without a note saying where it is written down."""
    if basis not in LEGAL_BASES:
        raise ValueError(
            "legal_basis must be one of "
            + ", ".join(f'"{b}"' for b in LEGAL_BASES)
            + f", not {basis!r}"
        )
    if basis != "consent" and not note.strip():
        raise ValueError(
            f'legal_basis = "{basis}" needs legal_basis_note: where that basis is written '
            "down (e.g. the contract clause or the law)"
        )


HELP: dict[str, str] = {
    "source": "camera:N (USB camera), rtsp://... or http://... (IP camera), "
    "video:PATH (replay), picamera (Raspberry Pi camera)",
    "database": "the kiosk's SQLite database: roster replica and event log "
    "(on a Pi: /var/lib/clockface/kiosk.db)",
    "realtime": "replay a video at its own pace (true) or as fast as possible (false)",
    "screen": "serve the kiosk screen, a local web page for a full-screen browser "
    "(greetings, clock, status, privacy notice); the Pi's clockface-screen unit shows it",
    "screen_port": "port of the screen's page (0: any free port)",
    "screen_bind": 'address the screen listens on: "127.0.0.1" keeps it on this machine; '
    '"0.0.0.0" exposes the page, and any preview, to the network',
    "screen_preview": "show the camera's live picture with face boxes on the screen (kept "
    "in memory only, never written)",
    "template_key_file": "the key that seals face templates in the database (32 bytes, "
    'mode 0600, never inside the database); "": the systemd credential template-key, '
    "then $CLOCKFACE_TEMPLATE_KEY_FILE, then DATABASE.key beside the database",
    "legal_basis": '"consent": enrolling someone in this kiosk\'s own roster needs their '
    "consent record (clockface enroll add --consent-ref --notice-version); another legal "
    'basis ("employment-contract", "legal-obligation", "public-task", "vital-interests") '
    "is recorded with each person instead, and needs legal_basis_note",
    "legal_basis_note": "with a legal basis other than consent: where it is written down "
    "(the contract clause, the law)",
    "retention_days": "templates of people deactivated longer than this many days are "
    "purged by clockface enroll purge (1 to 1095)",
    "timezone": "the kiosk's IANA time zone: decides the local day of each event",
    "mode": '"in" or "out" for a kiosk at an entrance or an exit; "auto" alternates '
    "per person and day",
    "cooldown_seconds": "after a person's event, passes within this many seconds log "
    "nothing (in auto mode also the shortest time from in to out)",
    "threshold": "largest face distance accepted as a match (measured: README, "
    '"Choosing the match threshold")',
    "margin": "how much farther the next-nearest person must be",
    "decisive_distance": "one encoding this close (and decisive_margin clear of anyone "
    "else) names a passer-by alone; otherwise votes_required encodings must agree "
    "(0: never alone)",
    "decisive_margin": "how much farther the next-nearest person must be for that",
    "detector": '"yunet" (OpenCV\'s YuNet: finds faces from about 20 px, fast), "hog" or '
    '"cnn" (dlib\'s)',
    "detect_max_side": "faces are detected on a copy of the frame at most this wide or high; "
    "0: sized from the frame so that a face of min_face_px is 1.5 times the smallest face "
    "the detector finds, at most 960 (clockface kiosk selftest prints the size and the "
    "distance)",
    "upsample": "times the HOG or CNN detector doubles that copy first (each halves the "
    "smallest face; YuNet takes none)",
    "min_face_px": "faces smaller than this (pixels, full frame) are too far away to encode",
    "encoder_workers": "processes that encode faces beside the frame loop (-1: one per core "
    "but one, so three on a Raspberry Pi 4; 0: in the frame loop)",
    "pass_window": "seconds within which encodings of tracks naming the same person count "
    "for one pass (a walker split into several tracks gives one event): the longest walk "
    "through the camera's view (5.9 m at 1 m/s with Camera Module 3)",
    "no_face_warning_seconds": "motion but no face for this long is reported (journal, "
    "status, screen): a camera that cannot see faces",
    "votes_required": "encodings of a pass that must agree on one person (and none on "
    "another) before it is logged",
    "pooled_min": "from this many encodings of a pass on, the mean of them is matched too "
    "(less scattered than each one; 0: off)",
    "max_encodings": "encodings per pass at the full pace (encode_gap apart); after that one "
    "every reencode_gap seconds while the pass is undecided",
    "reencode_gap": "seconds between encodings of a pass that is still undecided after "
    "max_encodings (someone who looked down at first may look up)",
    "max_turn": "a face turned further than this is not encoded until it turns back "
    "(YuNet's landmarks: the nose's offset from between the eyes, in eye distances; "
    "0.5 is about 45 degrees)",
    "encode_gap": "seconds at least between two encodings of one pass",
    "track_max_age": "seconds a face may go undetected before its pass is over",
    "detect_every": "run the detector on every Nth frame while looking for faces or voting",
    "detect_every_settled": "... and on every Nth frame once every pass in view is decided",
    "motion_threshold": "mean grey-level change (0-255) that counts as motion; no motion "
    "and nobody in view skips detection",
    "idle_detect_seconds": "... but faces are looked for at least this often, motion or "
    "not (someone far away, or still, changes little)",
    "roster_check_seconds": "how often the running kiosk checks the roster for changes",
    "liveness": '"required": a pass is logged only if the face also looks alive, not a '
    'photo held up (a print, a phone); one that does not is a suspected spoof. "off": '
    "no check (loads nothing more). Measured with bench/liveness.py",
    "liveness_min_residual": "how far the face's 68 landmarks must move unlike a flat "
    "picture's between two frames (eye distances) to count as a living head",
    "liveness_pairs": "pairs of frames, none sharing a frame, that must each move that much",
    "liveness_samples": "landmark samples at most per pass; none of its pairs moving "
    "enough by then: a suspected spoof",
    "liveness_gap": "seconds at least between two liveness samples of a pass",
}

_TOP = (
    "source",
    "database",
    "realtime",
    "screen",
    "screen_port",
    "screen_bind",
    "screen_preview",
    "template_key_file",
    "legal_basis",
    "legal_basis_note",
    "retention_days",
)
# The tables of kiosk.toml: [kiosk] is read here; [sync] by sync/config.py and
# [hardware] by hardware/config.py, each refusing its own unknown keys.
TABLES = ("kiosk", "sync", "hardware")
_SETTINGS = {f.name: f for f in dataclasses.fields(KioskSettings)}


_CHOICES: tuple[type[Mode] | type[LivenessMode], ...] = (Mode, LivenessMode)


def _kind(name: str) -> type:
    if name in _TOP:
        return type(getattr(KioskConfig(), name))
    default = getattr(KioskSettings(), name)
    return type(default)


def _from_toml(name: str, value: object, where: str) -> object:
    kind = _kind(name)
    if kind in _CHOICES:
        return _choice(kind, str(from_toml(str, name, value, where)), name, where)
    return from_toml(kind, name, value, where)


def _from_env(name: str, text: str, where: str) -> object:
    kind = _kind(name)
    if kind in _CHOICES:
        return _choice(kind, text, name, where)
    return from_env(kind, name, text, where)


def _choice(kind: type, text: str, name: str, where: str) -> Mode | LivenessMode:
    """One of an enum's values (the ``mode`` and ``liveness`` keys)."""
    enum: type[Mode] | type[LivenessMode] = Mode if kind is Mode else LivenessMode
    try:
        return enum(text)
    except ValueError:
        choices = ", ".join(f'"{m.value}"' for m in enum)
        raise ConfigError(f"{where}: {name} must be one of {choices}, not {text!r}") from None


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> KioskConfig:
    """The defaults, then the file (if given), then the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_file(Path(path)))
    warn_unknown(environ, ENV_PREFIX, (*_TOP, *_SETTINGS, "config"))
    for name in (*_TOP, *_SETTINGS):
        names = [f"{ENV_PREFIX}{name.upper()}"] + ([DATABASE_ENV] if name == "database" else [])
        for env in names:  # the last one set wins: CLOCKFACE_DB over CLOCKFACE_KIOSK_DATABASE
            if env in environ:
                values[name] = _from_env(name, environ[env], env)
    where = str(path) if path is not None else "the environment"
    return build(values, where)


def build(values: Mapping[str, Any], where: str = "the configuration") -> KioskConfig:
    """A validated config from checked values (names as in the file)."""
    top = {k: v for k, v in values.items() if k in _TOP}
    settings = {k: v for k, v in values.items() if k in _SETTINGS}
    try:
        return KioskConfig(**top, settings=KioskSettings(**settings))
    except ZoneInfoNotFoundError:
        raise ConfigError(
            f"{where}: timezone {settings.get('timezone')!r} is not an IANA time zone "
            "(e.g. Europe/Berlin, America/Chicago)"
        ) from None
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _read_file(path: Path) -> dict[str, Any]:
    table = read_table(path, "kiosk", HELP, command="clockface kiosk default-config", tables=TABLES)
    return {name: _from_toml(name, value, str(path)) for name, value in table.items()}


def default_file(*sections: str) -> str:
    """The whole configuration file with every key at its default, each commented: the
    ``[kiosk]`` and ``[hardware]`` tables, then ``sections`` (the root command adds the
    sync agent's ``[sync]``: the kiosk does not import the agent)."""
    config = KioskConfig()
    lines = [
        "# clockface kiosk configuration. Every key has the default shown; delete or",
        f"# change what you need. {ENV_PREFIX}<KEY> in the environment overrides a key.",
        "",
        "[kiosk]",
    ]
    for name in (*_TOP, *_SETTINGS):
        owner: object = config if name in _TOP else config.settings
        lines.append(f"# {HELP[name]}")
        lines.append(f"{name} = {to_toml(getattr(owner, name))}")
    from hardware.config import default_section as hardware_section

    return "\n".join(lines) + "\n\n" + "\n".join((hardware_section(), *sections))


def describe(config: KioskConfig) -> list[str]:
    """``key = value`` for every key, as in the file."""
    out = []
    for name in (*_TOP, *_SETTINGS):
        owner: object = config if name in _TOP else config.settings
        out.append(f"{name} = {to_toml(getattr(owner, name))}")
    return out
