"""French is complete: every string the code marks for translation has a French text that
keeps its fields, and the front end sends no English literal past the catalogue."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.i18n import Catalogue, catalogue, placeholders, tr

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (ROOT / "bot" / "locales").glob("*.toml"))


def _error_class_names() -> frozenset[str]:
    """Every `LanguardError` subclass in core/ and data/ (imported, so a new class in a new
    module is checked without editing this file)."""
    import importlib
    import pkgutil

    from core.errors import LanguardError

    for package in ("core", "data"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)
    names: set[str] = set()
    todo: list[type] = [LanguardError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names)


ERROR_CLASSES = _error_class_names()


def _classes_with_own_init() -> frozenset[str]:
    """Error classes that build their template inside `__init__` from other arguments
    (their templates are found in the class body instead)."""
    from core.errors import LanguardError

    own: set[str] = set()
    todo: list[type] = list(LanguardError.__subclasses__())
    while todo:
        cls = todo.pop()
        if "__init__" in vars(cls):
            own.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(own)


# modules of the front end that speak to operators on a terminal, not to members
TERMINAL_ONLY = frozenset(
    {
        "cli.py",
        "cli_check.py",
        "cli_discord.py",
        "cli_report.py",
        "cli_resync.py",
        "run.py",
        "logging_setup.py",
        "http_endpoint.py",
        "invite.py",
        "i18n.py",
        "__main__.py",
    }
)

# keywords whose literal value a member reads (content of messages, embeds, components)
SHOWN_KEYWORDS = frozenset(
    {"content", "title", "description", "label", "placeholder", "text", "value", "name"}
)
SHOWN_CALLS = frozenset(
    {"send_message", "send", "edit_original_response", "edit_message", "followup_send", "edit"}
)
# calls whose strings the Translator localizes when the tree is synced
TREE_CALLS = frozenset(
    {"command", "describe", "Group", "GroupCog", "choices", "rename", "context_menu"}
)


def _python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal_text(node: ast.AST) -> str | None:
    """The readable text of a str literal or f-string, or None when it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def _wordy(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 2


def error_templates() -> Iterator[tuple[str, int, str]]:
    for path in _python_files("core", "data"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _call_name(node) in ERROR_CLASSES and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield str(path.relative_to(ROOT)), node.lineno, first.value


def marked_strings() -> Iterator[tuple[str, int, str]]:
    """Literal messages given to `tr(locale, "…")` in the front end."""
    for path in _python_files("bot", "cogs"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _call_name(node) == "tr" and len(node.args) >= 2:
                message = node.args[1]
                if isinstance(message, ast.Constant) and isinstance(message.value, str):
                    yield str(path.relative_to(ROOT)), node.lineno, message.value


def untranslated_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    tree_call_args: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in TREE_CALLS:
            for sub in ast.walk(node):
                tree_call_args.add(id(sub))
        if isinstance(node, ast.ClassDef):  # GroupCog's class keywords
            for kw in node.keywords:
                for sub in ast.walk(kw):
                    tree_call_args.add(id(sub))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in tree_call_args:
            continue
        name = _call_name(node)
        if name == "tr":
            continue
        candidates: list[ast.AST] = [kw.value for kw in node.keywords if kw.arg in SHOWN_KEYWORDS]
        if name in SHOWN_CALLS and node.args:
            candidates.append(node.args[0])
        if name in {"Embed", "add_field", "set_footer", "set_author"}:
            candidates.extend(node.args)
        for value in candidates:
            text = _literal_text(value)
            if text is not None and _wordy(text):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]!r}")
    return found


FRONT_END = [p for p in _python_files("bot", "cogs") if p.name not in TERMINAL_ONLY]


@pytest.mark.parametrize("language", SHIPPED)
def test_every_core_error_has_a_translation(language: str) -> None:
    texts = catalogue().languages[language].text
    missing = sorted({t for _, _, t in error_templates() if t not in texts})
    assert not missing, f"{language}: {len(missing)} error messages untranslated: {missing[:20]}"


@pytest.mark.parametrize("language", SHIPPED)
def test_every_marked_reply_has_a_translation(language: str) -> None:
    texts = catalogue().languages[language].text
    missing = sorted({m for _, _, m in marked_strings() if m not in texts})
    assert not missing, f"{language}: {len(missing)} replies untranslated: {missing[:20]}"


@pytest.mark.parametrize("path", FRONT_END, ids=lambda p: p.name)
def test_front_end_shows_no_english_literal(path: Path) -> None:
    """Text a member reads goes through `tr`, so a French reader never gets English."""
    assert untranslated_literals(path) == []


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_their_fields(language: str) -> None:
    texts = catalogue().languages[language].text
    wrong = [k for k, v in texts.items() if placeholders(k) != placeholders(v)]
    assert wrong == []


def test_tr_falls_back_to_english_and_fills_fields() -> None:
    assert tr("ja", "no server named {name!r}", name="x") == "no server named 'x'"
    assert tr(None, "plain") == "plain"


def test_regional_locale_uses_its_language_file(tmp_path: Path) -> None:
    (tmp_path / "es.toml").write_text('[text]\n"Hello {who}" = "Hola {who}"\n')
    cat = Catalogue.load(tmp_path)
    assert cat.text("es-ES", "Hello {who}") == "Hola {who}"
    assert cat.text("es-419", "Hello {who}") == "Hola {who}"
    assert cat.text("fr", "Hello {who}") is None


# -- core errors: the templates inside error classes and settings validators, nested errors,
# -- and the `/server set` key descriptions (helper B)


def _core_extra_templates() -> Iterator[tuple[str, int, str]]:
    """Templates `error_templates` does not see: `super().__init__("…")` in a core error
    class, and `InvalidValue("…")`, which settings validators raise inside pydantic."""
    for path in _python_files("core", "data"):
        tree = ast.parse(path.read_text())
        for cls in ast.walk(tree):
            if not isinstance(cls, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in cls.bases}
            if not bases & (ERROR_CLASSES | {"InvalidValue"}):
                continue
            for node in ast.walk(cls):
                if (
                    isinstance(node, ast.Call)
                    and _call_name(node) == "__init__"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    yield str(path.relative_to(ROOT)), node.lineno, node.args[0].value
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) == "InvalidValue" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield str(path.relative_to(ROOT)), node.lineno, first.value


def _all_core_templates() -> set[str]:
    return {t for _, _, t in error_templates()} | {t for _, _, t in _core_extra_templates()}


def test_core_error_scan_sees_class_and_validator_templates() -> None:
    found = {t for _, _, t in _core_extra_templates()}
    assert "this mission is already on the server as {existing}" in found  # DuplicateMission
    assert "rcon_port must differ from port" in found  # a Minecraft settings validator
    assert any("is held by pid {pid}" in t for t in found)  # PortInUse


def test_every_core_error_is_built_from_a_literal_template() -> None:
    """A message built at run time (f-string, `+`, a helper's string) has no catalogue key."""
    classes = (ERROR_CLASSES | {"InvalidValue"}) - _classes_with_own_init()
    built = []
    for path in _python_files("core", "data"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _call_name(node) in classes and node.args:
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    built.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert built == []


@pytest.mark.parametrize("language", SHIPPED)
def test_every_core_error_class_and_validator_message_has_a_translation(language: str) -> None:
    texts = catalogue().languages[language].text
    missing = sorted({t for _, _, t in _core_extra_templates() if t not in texts})
    assert not missing, f"{language}: {len(missing)} messages untranslated: {missing[:20]}"


@pytest.mark.parametrize("language", SHIPPED)
def test_core_error_translations_keep_each_field_exactly(language: str) -> None:
    """`{name!r}` and `{low:g}` stay as they are: a changed conversion or format changes
    what the reader sees (quotes, decimals), not only the words."""
    import string

    def fields(template: str) -> list[tuple[str, str | None, str | None]]:
        parsed = string.Formatter().parse(template)
        return sorted((n, c, s) for _, n, s, c in parsed if n is not None)

    texts = catalogue().languages[language].text
    wrong = [t for t in _all_core_templates() if t in texts and fields(t) != fields(texts[t])]
    assert wrong == []


@pytest.mark.parametrize("language", SHIPPED)
def test_every_setting_key_description_has_a_translation(language: str) -> None:
    """Members read each key's description in the `/server set` autocomplete."""
    from core.config import Settings
    from core.runtime import default_profiles
    from core.services.settings_schema import schema_for

    texts = catalogue().languages[language].text
    profiles = default_profiles(Settings(_env_file=None))  # type: ignore[call-arg]
    keys = [key for profile in profiles for key in schema_for(profile).list_keys()]
    assert {"hostname", "rcon_password", "enable_rcon", "auto_restart"} <= {k.name for k in keys}
    missing = sorted({k.description for k in keys if k.description not in texts})
    assert not missing, f"{language}: {len(missing)} key descriptions untranslated: {missing}"


def test_a_wrapped_core_error_is_translated_with_its_wrapper() -> None:
    from bot.i18n import error_text
    from core.errors import InvalidInput

    inner = InvalidInput("write `on` or `off`")
    outer = InvalidInput("{name}: {exc}", name="von", exc=inner)
    assert str(outer) == "von: write `on` or `off`"
    french = error_text("fr", outer)
    assert french == tr("fr", "{name}: {exc}", name="von", exc=tr("fr", "write `on` or `off`"))
    assert "on` or `off" not in french  # the inner English is gone too


def test_a_settings_validator_refusal_reaches_a_french_member_in_french() -> None:
    """The validator's InvalidValue rides through pydantic and the schema to the reader."""
    from bot.i18n import error_text
    from core.errors import InvalidInput
    from core.games.arma3 import Arma3Profile
    from core.services.settings_schema import schema_for

    schema = schema_for(Arma3Profile(None))
    with pytest.raises(InvalidInput) as info:
        schema.parse("extra_flags", "-enableHT -enableHT", {})
    assert str(info.value) == "extra_flags: each extra flag may be given once"
    french = error_text("fr", info.value)
    assert french == "extra_flags : " + tr("fr", "each extra flag may be given once")
    assert "given once" not in french
    with pytest.raises(InvalidInput) as info:
        schema.parse("port", "70000", {})
    assert str(info.value) == "port must be a whole number from 1024 to 65000"
    assert "1024" in error_text("fr", info.value) and "whole" not in error_text("fr", info.value)


def front_end_error_templates() -> Iterator[tuple[str, int, str]]:
    """Literal templates of the errors bot/ and cogs/ raise themselves (the tree shows them
    through `error_text`, so they need a translation like the core's)."""
    for path in _python_files("bot", "cogs"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _call_name(node) in ERROR_CLASSES and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield str(path.relative_to(ROOT)), node.lineno, first.value


@pytest.mark.parametrize("language", SHIPPED)
def test_every_front_end_error_has_a_translation(language: str) -> None:
    texts = catalogue().languages[language].text
    found = list(front_end_error_templates())
    assert any(t.startswith("`{key}` is a secret") for _, _, t in found)  # the scan sees them
    missing = sorted({f"{p}:{n}: {t}" for p, n, t in found if t not in texts})
    assert not missing, f"{language}: {len(missing)} front-end errors untranslated: {missing}"


def test_a_fixed_word_in_a_core_error_is_translated() -> None:
    """A server state passed as a field reads "en marche", not "running", in French."""
    from bot.i18n import error_text
    from core.errors import InvalidInput
    from core.supervisor.states import ServerState

    error = InvalidInput(
        "`{server}` is {state}; stop it before restoring a backup",
        server="main",
        state=ServerState.RUNNING,
    )
    assert str(error) == "`main` is running; stop it before restoring a backup"
    french = error_text("fr", error)
    assert "running" not in french
    assert tr("fr", "running") in french
