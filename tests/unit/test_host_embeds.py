"""What `/host`, `/server list` and the host alerts show of hosts, rendered without Discord:
Discord's limits held however many hosts and servers there are, no endpoint shown, the
"unknown (host unreachable)" state, and French."""

from __future__ import annotations

import discord
import pytest

from bot.alert_embeds import host_reachable_embed, host_unreachable_embed
from bot.host_embeds import (
    MAX_EMBEDS,
    MAX_TOTAL,
    HostCard,
    fit_host_embeds,
    host_embed,
    wall_since,
)
from bot.server_lines import list_line
from core.docker.client import EngineUnreachable
from core.hosts.model import HostSpec
from core.services.hosts import HostFacts, HostState, HostStatus
from core.services.server_views import ServerSummary
from core.supervisor.states import ServerState

SECRET_ENDPOINT = "ssh://languard-admin@box.example.org"


def spec(name: str) -> HostSpec:
    return HostSpec.model_validate(
        {"name": name, "endpoint": SECRET_ENDPOINT, "images": {"arma3": "languard/arma3:1"}}
    )


def down(name: str, since: float | None = 100.0) -> HostStatus:
    facts = HostFacts(4, 16 * 2**30, None, None, None, 2, "20.10.24", "1.41")
    problem = EngineUnreachable(name)
    return HostStatus(spec(name), HostState.UNREACHABLE, facts, problem, since, since, 3)


def up(name: str) -> HostStatus:
    facts = HostFacts(8, 32 * 2**30, 12 * 2**30, 500 * 2**30, 200 * 2**30, 1, "24.0.7", "1.43")
    return HostStatus(spec(name), HostState.REACHABLE, facts, None, 50.0, 60.0, 0)


def everything(embed: discord.Embed) -> str:
    parts = [embed.title or "", embed.description or "", embed.footer.text or ""]
    for field in embed.fields:
        parts += [field.name or "", field.value or ""]
    return "\n".join(parts)


def test_an_unreachable_host_says_why_and_since_when_and_no_secret() -> None:
    embed = host_embed(HostCard(down("box-2"), running=["alpha"], since=1_700_000_000.0))
    assert embed.title == "🔌 box-2"
    assert embed.description == (
        "**unreachable since <t:1700000000:R>: the Docker engine of host box-2 does not answer**"
    )
    shown = {f.name: f.value for f in embed.fields}
    assert shown["Engine"] == "Docker 20.10.24 · API 1.41"
    assert shown["Memory"] == "16.0 GiB (free: not reported)"
    assert shown["Disk"] == "not reported"
    assert shown["Servers (state unknown)"] == "alpha" and shown["Waiting to start"] == "none"
    assert embed.footer.text == "Figures from its last answer"
    assert "languard-admin" not in everything(embed) and "ssh:" not in everything(embed)


def test_a_reachable_host_in_french() -> None:
    embed = host_embed(HostCard(up("box-3"), waiting=["beta", "gamma"], since=10.0), "fr")
    assert embed.title == "🟢 box-3"
    assert embed.description == "**joignable depuis <t:10:R>**"
    shown = {f.name: f.value for f in embed.fields}
    assert shown["Mémoire"] == "12.0 GiB libres sur 32.0 GiB"
    assert shown["En attente de démarrage"] == "2 : beta, gamma"
    assert shown["Serveurs en marche"] == "aucun"


def test_a_host_never_probed_and_one_without_a_report() -> None:
    never = host_embed(HostCard(HostStatus(spec("box-4"))))
    assert never.title == "❔ box-4" and never.description == "**not probed yet**"
    assert {f.value for f in never.fields if f.name in ("CPUs", "Engine")} == {"not reported"}


def test_many_servers_stay_within_a_field() -> None:
    names = [f"server-{i:03d}-with-a-long-name-x" for i in range(400)]
    embed = host_embed(HostCard(up("box-2"), running=names, waiting=names))
    for field in embed.fields:
        assert len(field.value or "") <= 1024
    shown = {f.name: f.value for f in embed.fields}
    assert "more" in shown["Running servers"] and shown["Waiting to start"].startswith("400: ")


@pytest.mark.parametrize("count", [1, 3, 8, 9, 10, 40])
def test_hosts_fit_one_message_and_the_rest_are_counted(count: int) -> None:
    used = 700  # the machine embed of `local`
    cards = [
        HostCard(down(f"box-{i}"), running=[f"s{i}-{j}" for j in range(30)]) for i in range(count)
    ]
    embeds = fit_host_embeds(cards, None, used_chars=used)
    assert 1 + len(embeds) <= MAX_EMBEDS
    assert used + sum(len(e) for e in embeds) <= MAX_TOTAL
    detailed = [e for e in embeds if not (e.title or "").startswith("+")]
    more = [e for e in embeds if (e.title or "").startswith("+")]
    if len(detailed) == count:
        assert more == []
    else:
        assert more[0].title == f"+{count - len(detailed)} more hosts"
        assert f"box-{len(detailed)}" in (more[0].description or "")


def test_wall_since_turns_the_registry_clock_into_epoch_seconds() -> None:
    assert wall_since(down("box-2", since=100.0), now=5000.0, clock=160.0) == 4940.0
    assert wall_since(down("box-2", since=None)) is None


def summary(host: str, away: bool) -> ServerSummary:
    return ServerSummary(
        name="alpha",
        game="arma3",
        state=ServerState.RUNNING,
        state_reason="adopted",
        uptime=3600.0,
        address="203.0.113.2:2302",
        paused=False,
        host=host,
        host_unreachable=away,
    )


def test_list_lines_show_unknown_never_running_for_a_host_away() -> None:
    assert list_line(None, summary("local", False)) == (
        "🟢 **alpha** (arma3) — running, up 1:00:00 — `203.0.113.2:2302`"
    )
    assert list_line(None, summary("box-2", True)) == (
        "❔ **alpha** (arma3 on box-2) — unknown (host unreachable) — `203.0.113.2:2302`"
    )
    assert list_line("fr", summary("box-2", True)) == (
        "❔ **alpha** (arma3 sur box-2) — inconnu (hôte injoignable) — `203.0.113.2:2302`"
    )


def test_host_alerts_in_english_and_french() -> None:
    away = host_unreachable_embed("box-2", EngineUnreachable("box-2"))
    assert away.title == "🔌 Host box-2 unreachable"
    assert (away.description or "").startswith(
        "the Docker engine of host box-2 does not answer; its servers show unknown until it "
        "answers."
    )
    french = host_unreachable_embed("box-2", EngineUnreachable("box-2"), "fr")
    assert french.title == "🔌 Hôte box-2 injoignable"
    assert (french.description or "").startswith("le moteur Docker de l'hôte box-2 ne répond pas")
    back = host_reachable_embed("box-2", 125.0, "fr")
    assert back.title == "🔌 L'hôte box-2 est de retour après 0:02:05"
    plain = host_unreachable_embed("box-2", "no answer within 10 s")
    assert (plain.description or "").startswith("no answer within 10 s; ")
