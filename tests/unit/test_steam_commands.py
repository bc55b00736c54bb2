"""SteamCMD command lines: argv tokens in the right order, the password never on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.steam import commands as c

EXE = Path("/opt/steamcmd/steamcmd.sh")
INSTALL = Path("/srv/arma 3")


def test_workshop_session_argv() -> None:
    plan = c.session(
        INSTALL,
        c.login("anonymous_not", None),
        [c.workshop_download_item(450814997), c.workshop_download_item(463939057, validate=False)],
    )
    assert c.build_argv(EXE, plan) == [
        str(EXE),
        "+@NoPromptForPassword", "1",
        "+force_install_dir", "/srv/arma 3",  # one token: no quoting, no shell
        "+login", "anonymous_not",
        "+workshop_download_item", "107410", "450814997", "validate",
        "+workshop_download_item", "107410", "463939057",
        "+quit",
    ]  # fmt: skip
    assert c.secret_script(plan) is None


def test_install_dir_precedes_login() -> None:
    plan = c.session(INSTALL, c.login(None), [c.app_update()])
    verbs = [command.verb for command in plan]
    assert verbs.index("force_install_dir") < verbs.index("login") < verbs.index("app_update")
    assert plan[2].args == ("anonymous",)
    assert plan[3].args == ("233780", "validate")


def test_app_update_with_branch() -> None:
    assert c.app_update(beta="creatordlc").argv() == [
        "+app_update", "233780", "-beta", "creatordlc", "validate"
    ]  # fmt: skip
    with pytest.raises(InvalidInput):
        c.app_update(beta="public; rm -rf /")


def test_password_goes_to_a_runscript_not_argv() -> None:
    plan = c.session(INSTALL, c.login("opsteam", "s3cret pass", "AB12C"), [c.app_update()])
    script = Path("/var/lib/languard/steam/login-x.txt")
    argv = c.build_argv(EXE, plan, script=script)
    assert not any("s3cret" in token or "AB12C" in token for token in argv)
    at = argv.index("+runscript")
    assert argv[at + 1] == str(script)
    assert argv.index("+force_install_dir") < at < argv.index("+app_update")
    assert c.secret_script(plan) == 'login opsteam "s3cret pass" AB12C\n'
    with pytest.raises(ValueError, match="runscript"):
        c.build_argv(EXE, plan)


def test_cached_login_has_no_secret() -> None:
    command = c.login("opsteam")
    assert command.argv() == ["+login", "opsteam"]
    assert not command.secret


@pytest.mark.parametrize(
    "call",
    [
        lambda: c.login("bad name"),
        lambda: c.login("bob", "pass\nquit"),
        lambda: c.login("bob", 'has"quote'),
        lambda: c.force_install_dir(Path("relative/dir")),
        lambda: c.workshop_download_item(0),
        lambda: c.workshop_download_item(-5),
    ],
)
def test_refused_input(call: object) -> None:
    with pytest.raises(InvalidInput):
        call()  # type: ignore[operator]
