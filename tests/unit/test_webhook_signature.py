"""Webhook signing and payloads: what a receiver verifies, and what never leaves the bot."""

from __future__ import annotations

import hashlib
import hmac
import json
from email.utils import formatdate

from core.events import PlayerBanned, PlayerJoined, ServerCrashed, ServerStateChanged
from core.services.webhooks import _label, event_payload, parse_retry_after, sign
from core.supervisor.states import ServerState


def test_signature_matches_githubs_documented_example() -> None:
    # docs.github.com "Validating webhook deliveries": the same scheme as X-Hub-Signature-256
    secret = b"It's a Secret to Everybody"
    assert sign(secret, b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_a_receiver_can_verify_with_the_standard_library() -> None:
    secret = b"a-shared-secret-of-16+"
    body = json.dumps({"event": "server.crashed"}).encode()
    header = sign(secret, body)
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(header, expected)
    assert not hmac.compare_digest(sign(secret, body + b" "), expected)
    assert not hmac.compare_digest(sign(b"another-secret-value", body), expected)


def test_payloads_name_the_event_and_carry_no_log_lines() -> None:
    state = ServerStateChanged(
        server_id=1, server="alpha", old=ServerState.STARTING, new=ServerState.RUNNING
    )
    assert event_payload(state) == (
        "server.state_changed",
        {"old": "starting", "new": "running", "reason": "", "expected": True},
    )
    crash = ServerCrashed(
        server_id=1,
        server="alpha",
        exit_code=3,
        signal=None,
        uptime_s=12.34567,
        last_lines=("rcon password is hunter2",),
        attempt=1,
        max_attempts=3,
        restart_in_s=2.0,
    )
    name, data = event_payload(crash) or ("", {})
    assert name == "server.crashed"
    assert "hunter2" not in json.dumps(data)
    assert data["uptime_s"] == 12.346
    ban = PlayerBanned(server_id=1, server="alpha", name="bob", reason="cheating", guid="g" * 32)
    assert event_payload(ban) == (
        "player.banned",
        {"name": "bob", "reason": "cheating", "player_key": "", "guid": "g" * 32},
    )
    assert event_payload(PlayerJoined(server_id=1, server="alpha", name="x", ip="1.2.3.4")) is None


def test_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(formatdate(1000.0 + 30, usegmt=True), now=1000.0) == 30.0
    assert parse_retry_after(formatdate(1000.0 - 30, usegmt=True), now=1000.0) == 0.0


def test_logs_name_a_webhook_without_its_path_or_query() -> None:
    label = _label(2, "https://hooks.example.com/services/T0/B0/token-xyz?key=abc")
    assert label == "webhook 2 (hooks.example.com)"
