#!/usr/bin/env python3
"""Relay the L1 serial console (tests/nested/run) to stdout.

Reads the raw console byte stream from argv[1] (a FIFO qemu writes to),
appends everything to the raw log argv[2], and copies to stdout only what
lies between the begin and end marker lines (argv[3], argv[4]): that is the
command's stdout.  Kernel or init noise outside the markers stays in the log.

Bytes are forwarded as soon as they arrive (no line buffering) so progress
output streams; only a possible partial end marker is held back.
"""
import os
import sys


def main() -> int:
    src, log_path, begin, end = sys.argv[1:5]
    begin_b = begin.encode() + b"\n"
    end_b = end.encode() + b"\n"
    out = sys.stdout.buffer
    fd = os.open(src, os.O_RDONLY)
    state = "before"  # before -> inside -> after
    pending = b""
    with open(log_path, "ab", buffering=0) as log:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            log.write(chunk)
            if state == "after":
                continue
            pending += chunk
            if state == "before":
                i = pending.find(begin_b)
                if i < 0:
                    # keep enough to match a marker split across reads
                    pending = pending[-len(begin_b):]
                    continue
                pending = pending[i + len(begin_b):]
                state = "inside"
            i = pending.find(end_b)
            if i >= 0:
                out.write(pending[:i])
                out.flush()
                pending = b""
                state = "after"
                continue
            # Forward all but a tail that could be the start of the marker.
            keep = len(end_b) - 1
            if len(pending) > keep:
                out.write(pending[:-keep])
                out.flush()
                pending = pending[-keep:]
    if state == "inside" and pending:
        out.write(pending)
        out.flush()
    os.close(fd)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
