#!/usr/bin/env python3
"""A fake dedicated game server: a real process that behaves like one, for supervisor tests.

It prints numbered log lines to stdout, says READY when it is up, can read console
commands from stdin (`stop`, `say ...`), crash on cue, or ignore the polite ways to stop.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="fake")
    parser.add_argument("--ready-after", type=float, default=0.2)
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between lines")
    parser.add_argument("--crash-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--crash-signal", type=int, default=None)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--ignore-stop", action="store_true")
    parser.add_argument("--console", action="store_true", help="read commands from stdin")
    parser.add_argument("--tick", type=float, default=0.05, help="longest sleep between checks")
    parser.add_argument("--print-env", action="append", default=[], help="print this variable")
    parser.add_argument(
        "--hog-mb", type=int, default=0, help="once ready, fill this many MiB (an OOM kill)"
    )
    args = parser.parse_args(argv)

    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = sys.stdout
    start = time.monotonic()
    ready = False
    count = 0
    out.write(f"{args.name} starting pid={os.getpid()}\n")
    for key in args.print_env:
        out.write(f"env {key}={os.environ.get(key, '<unset>')}\n")
    out.flush()
    next_line = start
    while True:
        now = time.monotonic()
        if not ready and not args.never_ready and now - start >= args.ready_after:
            ready = True
            out.write("READY\n")
            out.flush()
            if args.hog_mb:
                hoard = [bytearray(1024 * 1024) for _ in range(args.hog_mb)]  # pages touched
                out.write(f"holding {len(hoard)} MiB\n")
                out.flush()
        if args.crash_after is not None and now - start >= args.crash_after:
            out.write("FATAL: something went wrong\n")
            out.flush()
            if args.crash_signal is not None:
                os.kill(os.getpid(), args.crash_signal)
            return args.exit_code
        if now >= next_line:
            count += 1
            out.write(f"{args.name} line {count}\n")
            out.flush()
            next_line += args.interval
        timeout = max(0.0, min(next_line - time.monotonic(), args.tick))
        if args.console:
            readable, _, _ = select.select([sys.stdin], [], [], timeout)
            if readable:
                command = sys.stdin.readline().strip()
                out.write(f"console: {command}\n")
                out.flush()
                if command == "stop" and not args.ignore_stop:
                    out.write("stopping on console command\n")
                    out.flush()
                    return 0
        else:
            time.sleep(timeout)


if __name__ == "__main__":
    sys.exit(main())
