"""The engine-free parts of core.docker: stream framing, the exactly-once cursor, the
resume after a hard kill, container specs and exit statuses."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.docker.containers import ContainerState, StatsSample
from core.docker.handle import exit_status
from core.docker.logcopy import _save, _Saved, cursor_path, resume_point
from core.docker.logstream import ExactlyOnce, Frame, FrameDecoder, LogCursor, parse_timestamp
from core.docker.spec import ContainerSpec, Limits, Mount, container_name, create_body


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def stamped(stamp: str, text: str) -> Frame:
    return Frame(1, f"{stamp} {text}\n".encode())


@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=40)), max_size=20),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
)
def test_frames_come_out_whole_however_the_bytes_are_cut(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    data = b"".join(frame(s, p) for s, p in frames)
    decoder = FrameDecoder()
    out: list[Frame] = []
    start = 0
    for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    assert [(f.stream, f.payload) for f in out] == frames
    assert decoder.pending == 0


def test_a_stream_that_is_not_framed_is_refused_and_tty_streams_are_cut_in_lines() -> None:
    with pytest.raises(ValueError):
        FrameDecoder().feed(b"2026-12-05T08:22:47Z hello\n")
    tty = FrameDecoder(tty=True)
    assert [f.payload for f in tty.feed(b"one\ntw")] == [b"one\n"]
    assert [f.payload for f in tty.feed(b"o\n")] == [b"two\n"]


def test_timestamps_compare_as_numbers_whatever_their_precision() -> None:
    full = parse_timestamp("2026-12-05T08:22:47.757931700Z")
    trimmed = parse_timestamp("2026-12-05T08:22:47.7579317Z")  # Go drops trailing zeros
    assert full == trimmed
    assert parse_timestamp("2026-12-05T08:22:47Z") == parse_timestamp("2026-12-05T10:22:47+02:00")
    assert (
        parse_timestamp("2026-12-05T08:22:47.1Z")
        == parse_timestamp("2026-12-05T08:22:47Z") + 100_000_000
    )  # type: ignore[operator]
    assert parse_timestamp("yesterday") is None


def test_the_cursor_round_trips_and_gives_since_in_seconds_and_nanoseconds() -> None:
    cursor = LogCursor(1_764_923_000_757_931_703, 3)
    assert LogCursor.decode(cursor.encode()) == cursor
    assert cursor.since() == "1764923000.757931703"
    assert LogCursor(5, 0).since() == "0.000000005"
    assert LogCursor.decode("garbage") == LogCursor()


def test_a_resumed_stream_drops_exactly_what_was_delivered() -> None:
    t1, t2 = "2026-12-05T08:00:00.5Z", "2026-12-05T08:00:01Z"
    first = ExactlyOnce(LogCursor())
    delivered = [first.accept(stamped(t, x)) for t, x in [(t1, "a"), (t2, "b"), (t2, "c")]]
    assert [r.text for r in delivered if r] == ["a", "b", "c"]
    cursor_after_b = delivered[1].cursor  # type: ignore[union-attr]
    assert cursor_after_b.count == 1
    # `since` is inclusive: the engine sends b and c again, from their timestamp on
    again = ExactlyOnce(cursor_after_b)
    replay = [stamped(t2, "b"), stamped(t2, "c"), stamped("2026-12-05T08:00:02Z", "d")]
    assert [r.text for f in replay if (r := again.accept(f))] == ["c", "d"]
    assert again.accept(stamped(t1, "a")) is None  # older than the cursor


def _flood_file(tmp_path: Path, delivered: bytes, batch: bytes, written: int) -> Path:
    """A log holding `delivered`, then the first `written` bytes of `batch`, as if the
    copier was killed right after; its state saved just before the append."""
    log = tmp_path / "console.log"
    log.write_bytes(delivered)
    st = os.stat(log)
    _save(cursor_path(log), _Saved("c1", LogCursor(77, 2), batch, st.st_ino, st.st_size))
    with open(log, "ab") as out:
        out.write(batch[:written])
    return log


@pytest.mark.parametrize(
    ("written", "skip", "kept"),
    [(0, 0, b"old\n"), (4, 2, b"old\nx1\nx2\n"), (6, 2, b"old\nx1\nx2\n"), (9, 3, None)],
)
def test_a_copier_killed_mid_append_resumes_after_the_lines_that_made_it(
    tmp_path: Path, written: int, skip: int, kept: bytes | None
) -> None:
    batch = b"x1\nx2\nx3\n"
    log = _flood_file(tmp_path, b"old\n", batch, written if written != 4 else 6)
    if written == 4:  # a cut inside the third line: the piece is taken off the log
        with open(log, "ab") as out:
            out.write(b"x")
    cursor, skipped = resume_point(log, "c1")
    assert cursor == LogCursor(77, 2)
    assert skipped == skip
    if kept is not None:
        assert log.read_bytes() == kept
    assert resume_point(log, "another-container") == (LogCursor(), 0)


def test_after_a_rotation_the_batch_is_found_at_the_end_of_the_log(tmp_path: Path) -> None:
    batch = b"x1\nx2\nx3\n"
    log = _flood_file(tmp_path, b"old\n" * 100, batch, len(batch))
    state = json.loads(cursor_path(log).read_text())
    state["size"] = 10**9  # the log's head was cut since: its size says nothing
    cursor_path(log).write_text(json.dumps(state))
    assert resume_point(log, "c1") == (LogCursor(77, 2), 3)


def test_a_container_spec_asks_for_host_network_limits_labels_and_its_mount() -> None:
    spec = ContainerSpec(
        server_id=4,
        instance="abc123",
        name="Mon serveur / #1",
        image="languard/arma3:2.18",
        argv=("/opt/arma3/arma3server_x64", "-port=2302"),
        workdir="/data/servers/4",
        data=Mount("languard-abc123-4", "/data/servers/4"),
        env={"A": "1"},
        limits=Limits(cpus=1.5, memory=2 * 2**30, pids=256),
        console=True,
    )
    body = create_body(spec)
    host = body["HostConfig"]
    assert body["Entrypoint"] == ["/opt/arma3/arma3server_x64"] and body["Cmd"] == ["-port=2302"]
    assert body["Labels"]["languard.server"] == "4"
    assert body["Labels"]["languard.instance"] == "abc123"
    assert body["OpenStdin"] is True and body["Tty"] is False
    assert host["NetworkMode"] == "host" and host["Init"] is True
    assert (host["NanoCpus"], host["Memory"], host["MemorySwap"], host["PidsLimit"]) == (
        1_500_000_000,
        2 * 2**30,
        2 * 2**30,
        256,
    )
    assert host["Mounts"][0]["Type"] == "volume"
    assert host["RestartPolicy"] == {"Name": "no"}
    assert container_name(spec.name, 4) == "languard-Mon-serveur-1-4"
    published = create_body(
        ContainerSpec(
            server_id=4,
            instance="i",
            name="x",
            image="i",
            argv=("/x",),
            workdir="/",
            data=Mount("/srv", "/srv", bind=True),
            host_network=False,
            ports=((2302, "udp"), (2306, "tcp")),
        )
    )
    assert "NetworkMode" not in published["HostConfig"]
    assert published["HostConfig"]["PortBindings"]["2302/udp"] == [{"HostPort": "2302"}]
    assert set(published["ExposedPorts"]) == {"2302/udp", "2306/tcp"}


def _state(code: int | None, oom: bool = False) -> ContainerState:
    return ContainerState("id", "n", code is None, "exited", code, oom, 0, None)


def test_exit_statuses_read_signals_and_out_of_memory() -> None:
    assert exit_status(_state(7)).exit_code == 7
    killed = exit_status(_state(137))
    assert (killed.exit_code, killed.signal) == (None, 9)
    oom = exit_status(_state(137, oom=True))
    assert oom.oom_killed and oom.describe() == "killed: out of memory"
    assert exit_status(None).describe().startswith("exited (code unknown")


def test_cpu_percent_is_of_one_core_between_two_samples() -> None:
    before = StatsSample(1_000, 10_000, 4, 0, 0.0)
    after = StatsSample(1_500, 12_000, 4, 0, 1.0)
    assert after.cpu_percent(before) == pytest.approx(100.0)
    assert after.cpu_percent(None) == 0.0
