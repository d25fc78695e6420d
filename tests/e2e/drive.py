"""Drive a minivmm process like a person at its console would: wait for a
line of output, type something, check the exit status.

Each run is bounded by a timeout; output is collected for the checks and
saved so a failing case can be read afterwards."""
import os
import pty
import re
import select
import signal
import subprocess
import time


class Run:
    def __init__(self, argv, use_pty=False, timeout=240):
        self.argv = argv
        self.out = b""
        self.deadline = time.monotonic() + timeout
        self.timed_out = False
        if use_pty:
            # stdin/stdout on a terminal: minivmm puts it in raw mode.
            self.master, slave = pty.openpty()
            self.p = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                      stderr=subprocess.STDOUT, close_fds=True,
                                      start_new_session=True)
            os.close(slave)
            self.rfd = self.wfd = self.master
        else:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
            self.rfd = self.p.stdout.fileno()
            self.wfd = self.p.stdin.fileno()

    def _pump(self, wait):
        r, _, _ = select.select([self.rfd], [], [], wait)
        if not r:
            return True
        try:
            data = os.read(self.rfd, 65536)
        except OSError:
            data = b""
        if not data:
            return False
        self.out += data
        return True

    def expect(self, pattern, count=1):
        """Wait until pattern has appeared `count` times; False on exit or timeout."""
        rx = re.compile(pattern.encode())
        while len(rx.findall(self.out)) < count:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                return False
            if not self._pump(min(left, 1.0)) and self.p.poll() is not None:
                return len(rx.findall(self.out)) >= count
        return True

    def send(self, data):
        os.write(self.wfd, data.encode() if isinstance(data, str) else data)

    def wait(self):
        """Collect output until exit; returns the exit status (None on timeout)."""
        while self.p.poll() is None or self._pump(0):
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                self.p.send_signal(signal.SIGKILL)
                self.p.wait()
                return None
            self._pump(min(left, 0.5))
        return self.p.returncode

    def text(self):
        return self.out.decode(errors="replace")

    def value(self, key):
        m = re.search(re.escape(key) + r"=([^\r\n]*)", self.text())
        return m.group(1) if m else None
