"""The layers import one way, pinned (in the spirit of httpx's test_exported_members.py).

Every module of our packages is read with ``ast`` (tests/helpers/imports.py): absolute
and relative imports, at the top or inside a function, under ``TYPE_CHECKING`` or not.
The rules:

- the base package (``clockface/``) imports no other package of ours; the root command
  (``clockface/cli.py``, the composition root that gathers every part's CLI) is exempt;
- ``recognition/`` and ``hardware/`` import only the base;
- ``kiosk/`` imports only the base, ``recognition/`` and ``hardware/`` (sync sits above it);
- ``reports/`` never imports ``central/``, ``kiosk/`` or ``sync/`` (reports are pure), but
  for its CLI opening the kiosk and central stores (:data:`OPENS_STORES`): the report
  code takes the open store;
- no module imports a CLI module (``*.cli``) but the root command (and ``python -m
  clockface``, which runs it).

What still breaks a rule is listed by name in ``ALLOWED``, each pair waiting for its step
of issue 14. A new break fails, and so does a listed pair that is gone: take it off the
list, so that the list only ever shrinks, and deliberately.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.imports import Import, imports_in, package_of

ROOT = Path(__file__).resolve().parents[1]
ROOT_CLI = "clockface/cli.py"
MAIN = "clockface/__main__.py"
PURE = {"recognition", "hardware"}
KIOSK_MAY_IMPORT = {"kiosk", "clockface", "recognition", "hardware"}
REPORTS_MUST_NOT = {"central", "kiosk", "sync"}

# (file, imported module) pairs that still break a rule; each goes with a step of issue 14.
ALLOWED: frozenset[tuple[str, str]] = frozenset()

# A part's CLI is where it meets the databases: it opens the stores (never created by a
# typo) and hands the open store to the part's code. ``reports/cli.py`` opens the kiosk
# and central stores that the report code (sources, schedules, verify) reads through.
OPENS_STORES = {"reports/cli.py": {"central.store", "kiosk.store"}}


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    imp: Import

    @property
    def pair(self) -> tuple[str, str]:
        return (self.imp.file, self.imp.module)

    def __str__(self) -> str:
        return f"{self.imp}: {self.rule}"


def violations(imports: Iterable[Import]) -> list[Violation]:
    """Every import that breaks a layer rule, with the rule it breaks."""
    found = []
    for imp in imports:
        source, target = package_of(imp.importer), package_of(imp.module)
        is_cli = imp.module.endswith(".cli") or ".cli." in imp.module
        if (
            is_cli
            and imp.file != ROOT_CLI
            and not (imp.file == MAIN and imp.module == "clockface.cli")
        ):
            found.append(Violation("only the root command imports a CLI module", imp))
        if source == target or imp.file in (ROOT_CLI, MAIN):
            continue
        if source == "clockface":
            found.append(Violation("the base package imports no other package of ours", imp))
        elif source in PURE and target != "clockface":
            found.append(Violation(f"{source} imports only the base package", imp))
        elif source == "kiosk" and target not in KIOSK_MAY_IMPORT:
            found.append(Violation("kiosk imports only clockface, recognition, hardware", imp))
        elif (
            source == "reports"
            and target in REPORTS_MUST_NOT
            and imp.module not in OPENS_STORES.get(imp.file, ())
        ):
            found.append(Violation("reports never import central, kiosk or sync", imp))
    return sorted(found)


def test_the_layers_import_one_way() -> None:
    new = [v for v in violations(imports_in(ROOT)) if v.pair not in ALLOWED]
    assert not new, "imports that break the layers:\n" + "\n".join(map(str, new))


def test_the_allowed_list_only_shrinks() -> None:
    still = {v.pair for v in violations(imports_in(ROOT))}
    gone = sorted(ALLOWED - still)
    assert not gone, f"no longer imported: take these off ALLOWED in {__file__}: {gone}"


def test_the_whole_tree_is_read() -> None:
    imports = imports_in(ROOT)
    assert len({i.file for i in imports}) > 60
    assert "central/web/pages.py" in {i.file for i in imports}  # subpackages too
    clis = {i.module for i in imports if i.file == ROOT_CLI}
    parts = ("central", "enrollment", "kiosk", "recognition", "reports", "sync")
    assert {f"{part}.cli" for part in parts} <= clis  # the one place CLIs are imported


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_the_checker_catches_each_rule_however_the_import_is_written(tmp_path: Path) -> None:
    init = {f"{p}/__init__.py": "" for p in ("clockface", "recognition", "kiosk", "reports")}
    root = _tree(
        tmp_path,
        {
            **init,
            "clockface/cli.py": "from kiosk.cli import kiosk\n",  # the root: allowed
            "clockface/__main__.py": "from clockface.cli import main\n",
            "clockface/values.py": """
                def dim() -> int:
                    from recognition.gallery import DIM  # inside a function
                    return DIM
            """,
            "recognition/gallery.py": "from ..kiosk import store\nDIM = 128\n",  # relative
            "kiosk/__init__.py": "",
            "kiosk/cli.py": "from . import store\n",
            "kiosk/store.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    import sync.protocol
            """,
            "reports/sources.py": "from kiosk import cli\nfrom kiosk.store import Store\n",
        },
    )
    found = {(v.imp.file, v.imp.module, v.rule.split()[0]) for v in violations(imports_in(root))}
    assert found == {
        ("clockface/values.py", "recognition.gallery", "the"),
        ("recognition/gallery.py", "kiosk.store", "recognition"),
        ("kiosk/store.py", "sync.protocol", "kiosk"),
        ("reports/sources.py", "kiosk.cli", "only"),
        ("reports/sources.py", "kiosk.cli", "reports"),
        ("reports/sources.py", "kiosk.store", "reports"),
    }
