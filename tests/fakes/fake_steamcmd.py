#!/usr/bin/env python3
"""A fake SteamCMD that behaves the way shared/reference/steamcmd-workshop-and-headless.md
says the real one does (§1.9 lists what a faithful fake must do). Standard library only.

Started through a `steamcmd.sh` wrapper that `exec`s it (tests/fakes/steamcmd_bin.py writes
one), with FAKE_STEAMCMD_ROOT set to the wrapper's folder: the "Steam root" holding
`control.json` (the knobs), `logs/workshop_log.txt`, and what the fake reports to tests:
`fake_events.jsonl` (one JSON object a line) and `fake_state.json` (attempts per item).

What it copies from the real one, with the reference's sources:
* `+verb args` tokens, split or joined in one token (`"+login user pass"`), run left to right;
  `+runscript <file>` runs a file of the same verbs (§1.1). `force_install_dir` after `login`
  prints `Please use force_install_dir before logon!` and is ignored (§1.1, S25).
* Login lines and failures: `...OK`, `FAILED (Invalid Password)`, `Login Failure: Rate Limit
  Exceeded (84)`, the Steam Guard question printed without a newline and then waiting
  forever (§1.2, LinuxGSM #570); a login failure exits with code 5 (§1.5).
* app_update: ` Update state (0x61) downloading, progress: 42.17 (a / b)` lines, optionally
  with a decimal comma (LinuxGSM #356), then `Success! App '233780' fully installed.`, or
  `ERROR! Failed to install app '233780' (No subscription)` / `Error! App '233780' state is
  0x602 after update job.` with exit code 8 (§1.3, §1.5).
* workshop_download_item: `Downloading item <id> ...`, and the result glued to it or to the
  next item's line the way captured Linux output shows (§1.4); no per-item progress lines;
  failures `ERROR! Download item <id> failed (Timeout).`; the cause of a `Failure` written
  only to logs/workshop_log.txt (`Missing decryption key` for a login that does not own
  Arma 3, §1.4, §2); content in steamapps/workshop/content/107410/<id> with the record in
  appworkshop_107410.acf (§1.6); partial data kept in steamapps/workshop/downloads/ and
  resumed by the next run (§1.7); an item whose record says installed is a "Success" even
  when its folder is gone (§1.8); exit code 0 even when an item failed (§1.5).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("FAKE_STEAMCMD_ROOT") or Path(__file__).parent).resolve()
CONTROL = (
    json.loads((ROOT / "control.json").read_text()) if (ROOT / "control.json").exists() else {}
)
WORKSHOP_APP = 107410
out = sys.stdout


def emit(text: str, newline: bool = True) -> None:
    out.write(text + ("\n" if newline else ""))
    out.flush()
    if CONTROL.get("line_delay"):
        time.sleep(CONTROL["line_delay"])


def record(event: str, **fields: object) -> None:
    with open(ROOT / "fake_events.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


def workshop_log(text: str) -> None:
    (ROOT / "logs").mkdir(exist_ok=True)
    with open(ROOT / "logs" / "workshop_log.txt", "a", encoding="utf-8") as log:
        log.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}\n")


def bump_attempt(key: str) -> int:
    path = ROOT / "fake_state.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    state[key] = state.get(key, 0) + 1
    path.write_text(json.dumps(state))
    return int(state[key])


# -- KeyValues (the .acf record), minimal ---------------------------------------------


def vdf_parse(text: str) -> dict:
    tokens: list[str | None] = []  # None marks a closing brace, "{" an opening one
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = text.index('"', i + 1)
            tokens.append(text[i + 1 : end])
            i = end + 1
        elif ch == "{":
            tokens.append("{")
            i += 1
        elif ch == "}":
            tokens.append(None)
            i += 1
        else:
            i += 1
    stack: list[dict] = [{}]
    j = 0
    while j < len(tokens):
        key = tokens[j]
        if key is None:
            stack.pop()
            j += 1
        elif tokens[j + 1] == "{":
            stack[-1][key] = child = {}
            stack.append(child)
            j += 2
        else:
            stack[-1][key] = tokens[j + 1]
            j += 2
    return stack[0]


def vdf_dump(node: dict, depth: int = 0) -> str:
    pad = "\t" * depth
    lines = []
    for key, value in node.items():
        if isinstance(value, dict):
            lines += [f'{pad}"{key}"', f"{pad}{{", vdf_dump(value, depth + 1), f"{pad}}}"]
        else:
            lines.append(f'{pad}"{key}"\t\t"{value}"')
    return "\n".join(line for line in lines if line)


# -- the session ------------------------------------------------------------------------


class Session:
    def __init__(self) -> None:
        self.install: Path = ROOT
        self.user: str | None = None
        self.logged_in = False
        self.exit_code = 0
        self.glued = False  # the last output ended without a newline

    # the Workshop record
    def acf_path(self) -> Path:
        return self.install / "steamapps" / "workshop" / f"appworkshop_{WORKSHOP_APP}.acf"

    def read_acf(self) -> dict:
        path = self.acf_path()
        if not path.exists():
            return {"AppWorkshop": {"appid": str(WORKSHOP_APP), "SizeOnDisk": "0"}}
        return vdf_parse(path.read_text())

    def write_acf(self, root: dict) -> None:
        self.acf_path().parent.mkdir(parents=True, exist_ok=True)
        self.acf_path().write_text(vdf_dump(root) + "\n")

    def run(self, commands: list[list[str]]) -> int:
        for verb, *args in commands:
            handler = getattr(self, "cmd_" + verb.lstrip("@").lower(), None)
            if verb.startswith("@"):
                emit(f'"{verb}" = "{args[0] if args else ""}"')
            elif handler is None:
                emit(f'Command "{verb}" not found.')
            elif handler(args) is False:
                break
        if self.glued:
            emit("")
        return int(CONTROL.get("exit_code") or self.exit_code)

    def cmd_quit(self, _args: list[str]) -> bool:
        return False

    def cmd_force_install_dir(self, args: list[str]) -> None:
        if self.logged_in:
            emit("Please use force_install_dir before logon!")
            return
        self.install = Path(args[0])

    def cmd_runscript(self, args: list[str]) -> bool | None:
        path = Path(args[0])
        record("runscript", path=str(path))
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            if CONTROL.get("echo_script"):  # [I] a build that echoes script lines
                emit(f"Steam>{line}")
            verb, *rest = shlex.split(line)
            handler = getattr(self, "cmd_" + verb.lower(), None)
            if handler is not None and handler(rest) is False:
                return False
        return None

    def cmd_login(self, args: list[str]) -> bool | None:
        user = args[0] if args else "anonymous"
        record("login", user=user, with_password=len(args) > 1)
        if user == "anonymous":
            emit("Connecting anonymously to Steam Public...OK")
            return self._logged_in(None)
        account = CONTROL.get("accounts", {}).get(user)
        emit(f"Logging in user '{user}' to Steam Public...", newline=False)
        if account and account.get("rate_limited"):
            emit("")
            emit("Login Failure: Rate Limit Exceeded (84)")
            return self._login_failed()
        cached = user in CONTROL.get("cached_logins", [])
        if account is None or (len(args) > 1 and args[1] != account.get("password")):
            emit("FAILED (Invalid Password)")
            return self._login_failed()
        if len(args) == 1 and not cached:
            emit("FAILED (Invalid Password)")
            return self._login_failed()
        guard = account.get("guard")
        if guard and not cached and len(args) < 3:
            emit("")
            if guard == "mobile":
                emit("Enter the current code from your Steam Guard Mobile Authenticator app")
                emit("Two-factor code:", newline=False)
            else:
                emit("This computer has not been authenticated for your account using Steam Guard.")
                emit(
                    "Please check your email for the message from Steam, and enter the Steam Guard"
                )
                emit(" code from that message.")
                emit("Steam Guard code:", newline=False)
            record("guard_prompt", kind=guard)
            while True:  # stdin is closed: the real one waits forever (LinuxGSM #570)
                time.sleep(3600)
        emit("OK")
        return self._logged_in(user)

    def _logged_in(self, user: str | None) -> bool | None:
        self.user = user
        self.logged_in = True
        emit("Waiting for client config...OK")
        emit("Waiting for user info...OK")
        if CONTROL.get("hang") == "after_login":
            hang()
        return None

    def _login_failed(self) -> bool:
        self.exit_code = 5
        return False

    def owns(self, app_id: int) -> bool:
        if self.user is None:
            return False
        owned = CONTROL.get("accounts", {}).get(self.user, {}).get("owns", [WORKSHOP_APP, 233780])
        return app_id in owned

    # -- Workshop items -------------------------------------------------------------------

    def cmd_workshop_download_item(self, args: list[str]) -> None:
        app_id, item_id = int(args[0]), int(args[1])
        emit(f"Downloading item {item_id} ...", newline=False)
        self.glued = True
        spec = CONTROL.get("items", {}).get(str(item_id))
        attempt = bump_attempt(f"item:{item_id}")
        record("item_start", item=item_id, attempt=attempt, validate="validate" in args)
        if CONTROL.get("hang") == "during_download":
            hang()
        if not self.logged_in or not self.owns(app_id):
            workshop_log(
                f"[AppID {app_id}] Update canceled: Failed to initialize depot {app_id}, "
                f"manifest 4412930290493034932 (Missing decryption key)"
            )
            workshop_log(f"[AppID {app_id}] Download item {item_id} result : Failure")
            return self._item_error(item_id, "Failure")
        if spec is None:
            workshop_log(f"[AppID {app_id}] Download item {item_id} result : File Not Found")
            return self._item_error(item_id, "Failure")
        content = self.install / "steamapps/workshop/content" / str(app_id) / str(item_id)
        root = self.read_acf()
        section = root["AppWorkshop"]
        installed = section.get("WorkshopItemsInstalled", {}).get(str(item_id))
        version = str(spec.get("time_updated", 1700000000))
        if installed is not None and installed.get("timeupdated") == version:
            # the record is trusted, folder or not (§1.8)
            record("trusted_record", item=item_id, folder_exists=content.is_dir())
            return self._item_ok(item_id, content, int(installed.get("size", 0)))
        failure = spec.get("fail")
        if failure and (spec.get("fail_on", "every") == "every" or attempt == 1):
            return self._item_error(item_id, failure)
        if spec.get("phantom_first") and attempt == 1:
            # what a stale record produces (§1.8): "Success", nothing written, record kept
            record("phantom", item=item_id)
            self._record_installed(root, item_id, int(spec.get("size", 4096)), version)
            return self._item_ok(item_id, content, int(spec.get("size", 4096)))
        files = item_files(item_id, spec)
        total = sum(files.values())
        partial = self.install / "steamapps/workshop/downloads" / str(app_id) / str(item_id)
        blob = partial / f"{item_id}.partial"
        have = blob.stat().st_size if blob.exists() else 0
        record("resumed" if have else "fresh", item=item_id, have=have, total=total)
        partial.mkdir(parents=True, exist_ok=True)
        stop_at = total + 1
        timeout_at = spec.get("timeout_at")
        if timeout_at is not None and (spec.get("timeout_on", "first") == "every" or attempt == 1):
            # SteamCMD gives up ~5 minutes after an item starts (§1.7): each timed-out
            # run gets the same share further, so a big item needs several runs
            stop_at = have + max(1, total * int(timeout_at) // 100)
        steps = int(spec.get("steps", 10))
        step = max(1, total // steps)
        with open(blob, "ab") as data:
            while have < total:
                if have >= stop_at:
                    record("timeout", item=item_id, have=have)
                    return self._item_error(item_id, "Timeout")
                chunk = min(step, total - have, max(1, stop_at - have))
                data.write(b"\0" * chunk)
                data.flush()
                have += chunk
                time.sleep(float(spec.get("delay", 0.0)) / steps)
        write_content(content, files, item_id, spec)
        blob.unlink()
        self._record_installed(root, item_id, total, version)
        workshop_log(f"[AppID {app_id}] Download item {item_id} result : OK")
        return self._item_ok(item_id, content, total)

    def _record_installed(self, root: dict, item_id: int, total: int, version: str) -> None:
        section = root["AppWorkshop"]
        detail = {"manifest": str(9000 + item_id % 1000), "timeupdated": version}
        section.setdefault("WorkshopItemsInstalled", {})[str(item_id)] = {
            "size": str(total),
            "timeupdated": version,
            "manifest": detail["manifest"],
        }
        section.setdefault("WorkshopItemDetails", {})[str(item_id)] = {
            **detail,
            "timetouched": str(int(time.time())),
        }
        sizes = section["WorkshopItemsInstalled"].values()
        section["SizeOnDisk"] = str(sum(int(v["size"]) for v in sizes))
        self.write_acf(root)

    def _item_ok(self, item_id: int, content: Path, size: int) -> None:
        # the result starts a new line; the next "Downloading item" is glued to it (§1.4)
        emit("")
        emit(f'Success. Downloaded item {item_id} to "{content}" ({size} bytes)', newline=False)
        self.glued = True

    def _item_error(self, item_id: int, reason: str) -> None:
        if CONTROL.get("old_timeout_text") and reason == "Timeout":
            emit(f"ERROR! Timeout downloading item {item_id}")
        else:
            emit(f"ERROR! Download item {item_id} failed ({reason}).")
        self.glued = False

    # -- apps -----------------------------------------------------------------------------

    def cmd_app_update(self, args: list[str]) -> bool | None:
        app_id = int(args[0])
        spec = CONTROL.get("apps", {}).get(str(app_id), {})
        attempt = bump_attempt(f"app:{app_id}")
        record("app_update", app=app_id, attempt=attempt, args=args)
        if self.glued:
            emit("")
            self.glued = False
        if not self.logged_in or not self.owns(app_id):
            emit(f"ERROR! Failed to install app '{app_id}' (No subscription)")
            self.exit_code = 8
            return None
        manifest = self.install / "steamapps" / f"appmanifest_{app_id}.acf"
        if manifest.exists() and spec.get("up_to_date", True) and "validate" not in args:
            emit(f"Success! App '{app_id}' already up to date.")
            return None
        total = int(spec.get("size", 4_440_094_933))
        comma = bool(spec.get("decimal_comma"))
        fail = spec.get("fail")
        failing = fail and (spec.get("fail_on", "every") == "every" or attempt == 1)

        def state(code: int, name: str, done: int, of: int) -> None:
            pct = f"{(done / of * 100) if of else 0:.2f}"
            shown = pct.replace(".", ",") if comma else pct
            emit(f" Update state (0x{code:x}) {name}, progress: {shown} ({done} / {of})")
            time.sleep(float(spec.get("delay", 0.0)) / 10)

        state(0x3, "reconfiguring", 0, 0)
        state(0x5, "verifying install", total // 3, total)
        state(0x11, "preallocating", total // 5, total)
        for share in (1, 3, 5, 7, 9):
            state(0x61, "downloading", total * share // 10, total)
            if failing and share >= 5:
                emit(f"Error! App '{app_id}' state is {fail} after update job.")
                self.exit_code = 8
                return None
        state(0x81, "verifying update", total // 2, total)
        state(0x101, "committing", total, total)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(
            vdf_dump({"AppState": {"appid": str(app_id), "StateFlags": "4", "buildid": "1"}}) + "\n"
        )
        (self.install / "arma3server_x64").write_bytes(b"\0" * min(total, 4096))
        emit(f"Success! App '{app_id}' fully installed.")
        return None


def item_files(item_id: int, spec: dict) -> dict[str, int]:
    """Mixed-case names, and .bikey files at odd depths when asked (§4.2, §4.3)."""
    if "files" in spec:
        return {name: int(size) for name, size in spec["files"].items()}
    name = str(spec.get("name", f"Mod{item_id}")).replace(" ", "_")
    size = int(spec.get("size", 4096))
    small = {"meta.cpp": 0, "mod.cpp": 0, f"Keys/{name}.bikey": 160}
    if spec.get("odd_keys"):
        small.update(
            {
                f"{name}_Root.bikey": 160,
                f"Optionals/@{name}_Extra/Keys/{name}_Extra.BIKEY": 160,
                f"Some/Deep/Folder/{name}_Deep.bikey": 160,
            }
        )
    small[f"Addons/{name}_Main.pbo.{name}.bisign"] = 64
    pbo = max(1, size - sum(small.values()))
    return {f"Addons/{name}_Main.pbo": pbo, **small}


def write_content(content: Path, files: dict[str, int], item_id: int, spec: dict) -> None:
    title = spec.get("name", f"Mod{item_id}")
    for rel, size in files.items():
        path = content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == "meta.cpp":
            path.write_text(f'protocol = 1;\npublishedid = {item_id};\nname = "{title}";\n')
        elif rel == "mod.cpp":
            path.write_text(f'name = "{title}";\n')
        else:
            path.write_bytes(b"\1" * size)


def hang() -> None:
    """Ignore SIGTERM, leave a child that ignores it too, and never answer again."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)",
        ]
    )
    record("hang", child=child.pid)
    while True:
        time.sleep(3600)


def parse_argv(argv: list[str]) -> list[list[str]]:
    """`+verb a b` as separate tokens or joined in one (§1.1): both are accepted."""
    commands: list[list[str]] = []
    for token in argv:
        if token.startswith("+"):
            commands.append(shlex.split(token[1:]) if " " in token else [token[1:]])
        elif commands:
            commands[-1].append(token)
    return commands


def main() -> int:
    leaked = sorted(k for k in os.environ if k.startswith(("LANGUARD_", "DISCORD")))
    record("start", argv=sys.argv[1:], bot_env=leaked)
    emit(f"Redirecting stderr to '{ROOT}/logs/stderr.txt'")
    emit("[  0%] Checking for available updates...")
    emit("[----] Verifying installation...")
    emit("Steam Console Client (c) Valve Corporation - version 1705108307")
    emit("-- type 'quit' to exit --")
    emit("Loading Steam API...OK")
    for n in range(int(CONTROL.get("flood", 0))):
        emit(f"[AppInfo] noise line {n} " + "x" * 60)
    if CONTROL.get("long_line"):
        emit("L" * int(CONTROL["long_line"]))
    session = Session()
    code = session.run(parse_argv(sys.argv[1:]))
    record("exit", code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
