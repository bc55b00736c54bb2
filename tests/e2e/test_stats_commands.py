"""Charts in Discord: `/server stats` and the CPU/RAM chart under `/host`.

The real bot and discord.py on the fake Discord, a real fake Arma 3 process behind it,
sampled every 0.3 s (`LANGUARD_METRICS_INTERVAL`, as an operator sets it) so a player's
join reaches the stored history within a second. What is checked is what the fake Discord
received: an embed whose image is the PNG attached to the same message, a PNG that decodes
to the chart's size and is not one flat colour, the summary in the member's language, and
the words drawn on the chart passed in that language too. Tests run in file order: the
chart of a running server with a player, the same in French, a server never started
(a message, no image), refusals, then `/host`.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from unittest import mock

import discord
import pytest
import pytest_asyncio
from matplotlib import image as mpimg

from bot.chart_embeds import add_host_chart
from core.charts import HEIGHT_PX, HOST_HEIGHT_PX, WIDTH_PX, ChartLabels
from core.services.stats import HostChart, HostSummary
from tests.e2e.fake_discord import FakeMessage
from tests.e2e.product import Product, open_product, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALPHA = "st-alpha"
IDLE = "st-idle"
GUID = "0123456789abcdef0123456789abcdef"
CHART_TIMEOUT = 20.0
"""A reply that renders a chart: well under a second here, bounded for a loaded host."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    with mock.patch.dict(os.environ, {"LANGUARD_METRICS_INTERVAL": "0.3"}):
        async with open_product(tmp_path_factory.mktemp("stats")) as opened:
            await opened.create_server(ALPHA, start=True)
            await opened.create_server(IDLE)
            await opened.join(ALPHA, "Ann", GUID, "192.0.2.10")
            db = opened.running.services.db
            server_id = opened.server(ALPHA).id

            async def sampled_with_ann() -> bool:
                count = await db.fetchval(
                    "SELECT COUNT(*) FROM metrics WHERE server_id = ? AND players = 1",
                    (server_id,),
                )
                return bool(count)

            await until_async(sampled_with_ann, 15, "a stored sample with one player")
            yield opened


async def until_async(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """`until` for an async check: poll it, bounded."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def stats(product: Product, locale: str = "en-US", **options: Any) -> FakeMessage:
    handle = await product.fake.invoke_slash(
        "server stats", options, user=product.cast.viewer, locale=locale
    )
    return await handle.message(CHART_TIMEOUT)


def shown_image(msg: FakeMessage) -> tuple[int, int]:
    """The PNG the embed shows (`attachment://name`, attached to the same message): its
    size, once it is proven to decode and not to be one flat colour."""
    assert len(msg.embeds) == 1, msg.embeds
    url = str((msg.embeds[0].get("image") or {}).get("url", ""))
    assert url.startswith("attachment://"), msg.embeds[0]
    stored = msg.file(url.removeprefix("attachment://"))
    img = mpimg.imread(io.BytesIO(stored.data), format="png")
    assert img[:, :, :3].std() > 0.01, "the chart is one colour"
    return int(img.shape[1]), int(img.shape[0])


def fields(msg: FakeMessage) -> dict[str, str]:
    return {str(f["name"]): str(f["value"]) for f in msg.embeds[0].get("fields") or []}


def record_labels(
    product: Product, monkeypatch: pytest.MonkeyPatch, method: str
) -> list[ChartLabels]:
    """Wrap the stats service's `method` (still drawing for real) to see the labels passed."""
    service = product.running.services.stats
    real = getattr(service, method)
    seen: list[ChartLabels] = []

    async def spy(*args: Any, **kwargs: Any) -> Any:
        given = [a for a in (*args, *kwargs.values()) if isinstance(a, ChartLabels)]
        seen.extend(given or [ChartLabels(title="(none passed)")])
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, method, spy)
    return seen


async def test_stats_shows_the_chart_of_a_running_server(
    product: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = record_labels(product, monkeypatch, "server_chart")
    msg = await stats(product, server=ALPHA, period="1h")
    assert not msg.ephemeral and not msg.loading
    embed = msg.embeds[0]
    assert embed["title"] == f"📈 {ALPHA} over the last hour", embed
    assert shown_image(msg) == (WIDTH_PX, HEIGHT_PX)
    assert [a.filename for a in msg.attachments] == [f"{ALPHA}-1h.png"]
    found = fields(msg)
    assert found["Players"].startswith("average ") and found["Players"].endswith("· peak 1")
    assert found["Starts · stops · crashes"] == "1 · 0 · 0"
    assert "%" in found["CPU"] and "iB" in found["RAM"], found
    samples = int(embed["footer"]["text"].split("Samples: ")[1].split(" ")[0])
    assert samples >= 1, embed["footer"]
    (drawn,) = labels
    assert drawn.title == f"{ALPHA} over the last hour" and drawn.start == "started", drawn


async def test_a_french_member_reads_the_stats_in_french(
    product: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = record_labels(product, monkeypatch, "server_chart")
    msg = await stats(product, "fr", server=ALPHA, period="7d")
    embed = msg.embeds[0]
    assert embed["title"] == f"📈 {ALPHA} sur les 7 derniers jours", embed
    assert shown_image(msg) == (WIDTH_PX, HEIGHT_PX)
    found = fields(msg)
    assert set(found) == {"Joueurs", "CPU", "RAM", "Démarrages · arrêts · plantages"}, found
    assert found["Joueurs"].startswith("moyenne ") and found["Joueurs"].endswith("· pic 1")
    assert embed["footer"]["text"].startswith("Mesures : "), embed["footer"]
    assert "average" not in text_of(msg) and "Samples" not in text_of(msg)
    (drawn,) = labels
    assert drawn.title == f"{ALPHA} sur les 7 derniers jours"
    assert (drawn.players, drawn.start, drawn.stop, drawn.crash) == (
        "Joueurs",
        "démarré",
        "arrêté",
        "planté",
    )
    assert drawn.no_data == "Aucune donnée sur cette période"


async def test_a_server_without_data_gets_a_message_not_an_empty_chart(
    product: Product,
) -> None:
    msg = await stats(product, server=IDLE, period="24h")
    assert msg.attachments == [] and "image" not in msg.embeds[0], msg.embeds
    text = text_of(msg)
    assert f"No data for **{IDLE}** over the last 24 hours" in text, text
    french = await stats(product, "fr", server=IDLE, period="30d")
    assert french.attachments == []
    assert f"Aucune donnée pour **{IDLE}** sur les 30 derniers jours" in text_of(french)


async def test_unknown_server_and_no_level_are_refused(product: Product) -> None:
    unknown = await product.error(
        "server stats", {"server": "st-nope", "period": "1h"}, user=product.cast.viewer
    )
    assert "there is no server named `st-nope`" in unknown, unknown
    nobody = await product.error("server stats", {"server": ALPHA}, user=product.cast.nobody)
    assert "You need the **viewer** level for this (you have none)" in nobody


async def test_host_carries_its_cpu_and_ram_chart(
    product: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats_service = product.running.services.stats
    await stats_service.sample_host()  # the bot samples once a minute; no waiting for it
    await stats_service.sample_host()
    labels = record_labels(product, monkeypatch, "host_chart")
    msg = await product.reply(
        "host", {"period": "1h"}, user=product.cast.viewer, timeout=CHART_TIMEOUT
    )
    assert shown_image(msg) == (WIDTH_PX, HOST_HEIGHT_PX)
    assert [a.filename for a in msg.attachments] == ["host-1h.png"]
    chart_field = fields(msg)["CPU and RAM over the last hour"]
    assert chart_field.startswith("CPU: average ") and "\nRAM: average " in chart_field
    assert "Disk (data)" in fields(msg)  # the machine's facts are still there

    handle = await product.fake.invoke_slash("host", user=product.cast.viewer, locale="fr")
    french = await handle.message(CHART_TIMEOUT)
    assert shown_image(french) == (WIDTH_PX, HOST_HEIGHT_PX)
    assert [a.filename for a in french.attachments] == ["host-24h.png"]  # the default
    value = fields(french)["CPU et RAM sur les dernières 24 heures"]
    assert value.startswith("CPU : moyenne ") and "\nRAM : moyenne " in value
    assert [label.title for label in labels] == [
        "CPU and RAM over the last hour",
        "CPU et RAM sur les dernières 24 heures",
    ]


async def test_host_without_samples_gets_a_note_and_no_image() -> None:
    """Right after start-up the host has not been sampled yet (once a minute)."""
    empty = HostSummary("24h", 0.0, 86400.0, 0, None, None, None, None, None)
    embed = discord.Embed()
    assert add_host_chart(embed, HostChart(b"", empty), "fr") is None
    assert embed.image.url is None
    assert embed.fields[0].value == "Pas encore de mesure : l'hôte est mesuré une fois par minute."
