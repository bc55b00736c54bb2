"""The rules of the house (/work/shared/design/architecture.md), read from the source.

Every import statement counts, wherever it is: at the top, inside a function, or under
`if TYPE_CHECKING:`. A typing-only import still ties two modules together for the reader
and for the type checker, and a circle of them is how a real import circle starts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN_IN_FRONT_END = (
    ("data", "the database: call a service"),
    ("core.supervisor.server", "ManagedServer: call a service"),
    ("core.rcon", "an RCon socket: call a service"),
)
"""Module prefixes bot/ and cogs/ must not import, and why."""

OFFLINE_TOOLS = frozenset({"bot.cli", "bot.cli_check", "bot.cli_resync"})
"""`python -m bot check|resync|backup`: command-line entry points that open the database
before any service exists (a composition root, like core.runtime), not the Discord front
end. They may import data/; nothing else in bot/ may."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:  # `from bot import outbox` imports the module bot.outbox
                yield f"{base}.{alias.name}", node.lineno


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _is_game_link(name: str) -> bool:
    return _within(name, "core.games") and name.split(".")[-1].endswith("_link")


def front_end_violations() -> list[str]:
    found: dict[tuple[str, str], str] = {}
    """(file:line, why) -> the message: `from a.b import c` is checked as a.b and a.b.c,
    and each line is reported once per reason."""
    for package in ("bot", "cogs"):
        for module, path in _modules(package).items():
            for name, line in _imports(module, path):
                rel = f"{path.relative_to(ROOT)}:{line}"
                reasons = [why for prefix, why in FORBIDDEN_IN_FRONT_END if _within(name, prefix)]
                if module in OFFLINE_TOOLS and _within(name, "data"):
                    reasons.remove(FORBIDDEN_IN_FRONT_END[0][1])
                if _is_game_link(name):
                    reasons.append("a game link: call a service")
                for why in reasons:
                    found.setdefault((rel, why), f"{rel} imports {name} ({why})")
    return list(found.values())


def discord_in_core_or_data() -> list[str]:
    found: list[str] = []
    for package in ("core", "data"):
        for module, path in _modules(package).items():
            for name, line in _imports(module, path):
                if _within(name, "discord"):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return found


def import_cycles(package: str) -> list[list[str]]:
    """The strongly connected components (size > 1, or a self-import) of the package's
    import graph: each is a circle of modules that import one another."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in _imports(module, path):
            if name in modules and (name != package or module == package):
                graph[module].add(name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; bot/ has a few dozen modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


# -- the rules -----------------------------------------------------------------------------


def test_the_front_end_talks_to_services_only() -> None:
    assert front_end_violations() == []


def test_core_and_data_never_import_discord() -> None:
    assert discord_in_core_or_data() == []


def test_no_import_cycle_among_bot_modules() -> None:
    assert import_cycles("bot") == []


# -- the checker itself catches what it must -----------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_sees_typing_only_and_relative_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path,
        {
            "bot/__init__.py": "",
            "bot/client.py": "from bot.hub import Hub\n",
            "bot/hub.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from .client import Client\n"
            ),
            "bot/fine.py": "from bot import hub\n",
            "cogs/__init__.py": "",
            "cogs/x.py": (
                "def f():\n"
                "    from data.repositories.bans import BanRepository\n"
                "    from core.supervisor.server import ManagedServer\n"
                "    import core.rcon.battleye\n"
                "    from core.games.arma3_link import Arma3Link\n"
            ),
            "core/__init__.py": "",
            "core/y.py": "import discord\n",
            "data/__init__.py": "",
        },
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert import_cycles("bot") == [["bot.client", "bot.hub"]]
    found = front_end_violations()
    assert len(found) == 4, found
    assert any("arma3_link" in f and "game link" in f for f in found)
    assert discord_in_core_or_data() == ["core/y.py:1 imports discord"]


# -- the supervisor stays behind the services ----------------------------------------------

SERVICE_ONLY_BOT_MODULES = (
    "bot/embeds.py",
    "bot/modals.py",
    "bot/progress.py",
    "bot/selects.py",
    "bot/status_board.py",
    "bot/status_buttons.py",
)
"""bot/ modules that answer members; the channel hub may still wire the supervisor into
the relay and alerts at start-up, these never reach it."""


def supervisor_reaches(paths: list[Path]) -> list[str]:
    """Each `<anything>.supervisor` attribute or import of the Supervisor in `paths`:
    a command that holds the supervisor can skip the service's audit and checks."""
    found: list[str] = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            rel = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr == "supervisor":
                found.append(f"{rel} uses .supervisor")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "core.supervisor.supervisor"
            ):
                found.append(f"{rel} imports the Supervisor")
    return found


def test_cogs_and_member_facing_bot_modules_never_reach_the_supervisor() -> None:
    paths = sorted((ROOT / "cogs").rglob("*.py"))
    paths += [ROOT / rel for rel in SERVICE_ONLY_BOT_MODULES]
    assert supervisor_reaches(paths) == []


def test_the_supervisor_check_sees_attributes_and_imports(tmp_path: Path) -> None:
    cog = tmp_path / "cog.py"
    cog.write_text(
        "from core.supervisor.supervisor import Supervisor\n"
        "def f(bot):\n"
        "    '''bot.services.supervisor in a docstring is fine'''\n"
        "    return bot.services.supervisor.by_name('x')  # .supervisor\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(globals(), "ROOT", tmp_path)
        assert supervisor_reaches([cog]) == [
            "cog.py:1 imports the Supervisor",
            "cog.py:4 uses .supervisor",
        ]
