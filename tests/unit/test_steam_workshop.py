"""The Workshop details client against a fake endpoint on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import pytest

from core.steam import WorkshopClient, WorkshopItem, WorkshopUnavailable
from tests.fakes.workshop_api import fake_workshop_api

ITEMS = {
    450814997: {"title": "CBA_A3", "size": 2652787, "time_updated": 1700000000},
    463939057: {"title": "ace", "size": 1_000_000_000, "time_updated": 1700000100},
}


async def test_details_of_found_items() -> None:
    async with fake_workshop_api(ITEMS) as api, WorkshopClient(api.url) as client:
        api.size_as_string = {463939057}  # both forms occur in real answers
        details = await client.details([450814997, 463939057, 1, 450814997])
    assert details == {
        450814997: WorkshopItem(450814997, "CBA_A3", 2652787, 1700000000, 107410),
        463939057: WorkshopItem(463939057, "ace", 1_000_000_000, 1700000100, 107410),
    }
    assert api.requests == [
        {
            "itemcount": "3",
            "publishedfileids[0]": "450814997",
            "publishedfileids[1]": "463939057",
            "publishedfileids[2]": "1",
        }
    ]


async def test_large_lists_are_batched() -> None:
    many = {i: {"title": f"m{i}", "size": i} for i in range(1, 251)}
    async with fake_workshop_api(many) as api, WorkshopClient(api.url) as client:
        details = await client.details(list(many))
    assert len(details) == 250
    assert [r["itemcount"] for r in api.requests] == ["100", "100", "50"]


@pytest.mark.parametrize(
    ("knob", "words"),
    [
        ({"status": 503}, "HTTP 503"),
        ({"garbage": True}, "could not be read"),
        ({"pad": 300_000}, "too large"),
    ],
)
async def test_bad_answers_are_clear_errors(knob: dict[str, object], words: str) -> None:
    async with fake_workshop_api(ITEMS) as api:
        for name, value in knob.items():
            setattr(api, name, value)
        async with WorkshopClient(api.url, max_bytes=100_000) as client:
            with pytest.raises(WorkshopUnavailable, match=words):
                await client.details([450814997])


async def test_unreachable_endpoint() -> None:
    async with fake_workshop_api(ITEMS) as api:
        url = api.url
    async with WorkshopClient(url, timeout=5.0) as client:
        with pytest.raises(WorkshopUnavailable, match="could not be reached"):
            await client.details([450814997])
