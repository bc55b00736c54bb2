"""Placement: the host with the most free memory among those that can run the game and
have room; a full house still gets a home (the start will queue); no host, a clear refusal."""

from __future__ import annotations

import pytest

from core.hosts import HostRoom, NoHostForGame, Placement, pick_host

G = 1024**3
ARMA = frozenset({"arma3"})
BOTH = frozenset({"arma3", "minecraft"})


def test_most_free_memory_wins_among_hosts_that_run_the_game() -> None:
    rooms = [
        HostRoom("local", frozenset({"minecraft"}), memory_available=64 * G),
        HostRoom("a", ARMA, memory_capacity=16 * G, memory_reserved=10 * G),
        HostRoom("b", BOTH, memory_capacity=32 * G, memory_reserved=8 * G, memory_available=20 * G),
        HostRoom("c", ARMA, memory_available=12 * G),
    ]
    # b: min(32-8, 20) = 20 GiB free beats c (12) and a (6); local cannot run arma3
    assert pick_host(rooms, "arma3", 4 * G) == Placement("b", True)
    assert pick_host(rooms, "minecraft") == Placement("local", True)


def test_free_memory_is_the_smaller_of_capacity_left_and_reported() -> None:
    room = HostRoom("a", ARMA, memory_capacity=16 * G, memory_reserved=4 * G)
    assert room.free_memory == 12 * G
    assert HostRoom("a", ARMA, memory_capacity=16 * G, memory_available=3 * G).free_memory == 3 * G
    assert HostRoom("a", ARMA, memory_available=3 * G).free_memory == 3 * G
    assert HostRoom("a", ARMA).free_memory is None
    assert HostRoom("a", ARMA, memory_capacity=4 * G, memory_reserved=9 * G).free_memory == 0


def test_hosts_without_room_are_passed_over() -> None:
    rooms = [
        HostRoom("big", ARMA, servers=4, max_servers=4, memory_available=64 * G),
        HostRoom("queued", ARMA, queued=1, memory_available=48 * G),
        HostRoom("tight", ARMA, memory_available=2 * G),
        HostRoom("small", ARMA, memory_available=8 * G),
    ]
    # big is full by count, queued has someone waiting (no overtaking), tight lacks memory
    assert pick_host(rooms, "arma3", 4 * G) == Placement("small", True)


def test_unreachable_hosts_are_never_chosen() -> None:
    rooms = [
        HostRoom("a", ARMA, reachable=False, memory_available=64 * G),
        HostRoom("b", ARMA, memory_available=1 * G),
    ]
    assert pick_host(rooms, "arma3") == Placement("b", True)
    with pytest.raises(NoHostForGame) as caught:
        pick_host(rooms[:1], "arma3")
    assert (
        str(caught.value)
        == "every host that can run arma3 is unreachable right now; try again later"
    )


def test_when_all_are_full_the_shortest_queue_then_most_memory_is_home() -> None:
    rooms = [
        HostRoom("a", ARMA, servers=2, max_servers=2, queued=3, memory_available=64 * G),
        HostRoom("b", ARMA, servers=2, max_servers=2, queued=1, memory_available=8 * G),
        HostRoom("c", ARMA, servers=2, max_servers=2, queued=1, memory_available=16 * G),
    ]
    assert pick_host(rooms, "arma3") == Placement("c", False)


def test_a_host_too_small_for_the_server_is_never_its_home() -> None:
    rooms = [
        HostRoom("small", ARMA, memory_capacity=4 * G),
        HostRoom("full", ARMA, servers=1, max_servers=1, memory_capacity=32 * G),
    ]
    assert pick_host(rooms, "arma3", 8 * G) == Placement("full", False)
    with pytest.raises(NoHostForGame) as caught:
        pick_host(rooms[:1], "arma3", 8 * G)
    assert str(caught.value) == "no host that can run arma3 offers 8 GiB of memory to one server"


def test_ties_go_to_the_host_declared_first() -> None:
    rooms = [HostRoom(name, ARMA, memory_available=8 * G) for name in ("x", "y", "z")]
    assert pick_host(rooms, "arma3").host == "x"
    assert pick_host(list(reversed(rooms)), "arma3").host == "z"
    # unknown free memory ranks after any known amount
    assert (
        pick_host([HostRoom("u", ARMA), HostRoom("k", ARMA, memory_available=1)], "arma3").host
        == "k"
    )


def test_no_host_for_the_game_is_a_refusal_a_member_understands() -> None:
    with pytest.raises(NoHostForGame) as caught:
        pick_host([HostRoom("local", frozenset({"minecraft"}))], "arma3")
    assert caught.value.template == (
        "no host can run {game}: the operator adds an image for it in hosts.toml"
    )
    assert caught.value.params == {"game": "arma3"}
