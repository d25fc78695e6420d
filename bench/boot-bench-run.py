#!/usr/bin/env python3
"""Boot benchmark driver; runs where /dev/kvm works (bench/boot-bench puts
it inside tests/nested/run).  For each round, every VMM boots the same
kernel + initramfs once; the order rotates from round to round so that a
slow phase of the (noisy, shared) machine does not always hit the same VMM.

Per boot it measures:
  init_s     host wall time from just before fork/exec of the VMM to the
             moment its stdout delivers the BOOTBENCH-INIT line (printed
             first thing by /init), i.e. launch to init;
  uptime_s   the guest's /proc/uptime printed by /init right after;
  exit_s     launch to process exit (init sleeps 1 s, then powers off);
  maxrss     peak RSS of the VMM process (wait4() rusage ru_maxrss);
  guest_rss  RSS of the guest-RAM mapping(s): anonymous mappings whose size
             is the guest RAM size (+ up to 64 MiB, in case of alignment),
             read from /proc/PID/smaps every 0.1 s from the marker until
             exit; guest RAM only grows (until the VMM unmaps it on exit),
             so the largest sample is the amount of guest RAM touched
             (minus what the guest touches after the last sample);
  overhead   maxrss - guest_rss: what the VMM itself costs.  Guest RAM is
             THP-backed in both VMMs, so a 2 MiB page first touched after
             the last sample shows up here: +-2 MiB of noise.
  self_overhead  minivmm only: its own --stats figure, VmHWM minus the
             guest RAM resident (mincore) when the VM stops: exact.
Nothing is sampled before the marker, so the measurement does not slow the
boot it measures.  Prints a table of medians and the minivmm/QEMU ratios.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

MARK = b"BOOTBENCH-INIT"
UPTIME_RE = re.compile(rb"BOOTBENCH-UPTIME=([0-9.]+)")
MAP_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)")

ap = argparse.ArgumentParser()
ap.add_argument("--minivmm", required=True)
ap.add_argument("--kernel", required=True)
ap.add_argument("--initrd", required=True)
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--vmms", default="minivmm,microvm,microvm+cmd,q35",
                help="minivmm, microvm, q35; a '+cmd' suffix gives QEMU minivmm's cmdline")
ap.add_argument("--mem", type=int, default=256, help="guest RAM in MiB")
ap.add_argument("--cmdline", default=None,
                help="kernel command line for minivmm and the '+cmd' QEMU runs "
                "(default: minivmm's built-in default)")
ap.add_argument("--qemu-cmdline", default="console=ttyS0 quiet",
                help="kernel command line for plain QEMU runs (default: %(default)s)")
ap.add_argument("--binary", action="append", default=[], metavar="NAME=PATH",
                help="another minivmm binary to measure as VMM NAME (NAME must start "
                "with 'minivmm'), e.g. minivmm-base=.cache/minivmm-base for before/after; "
                "it boots with its own default cmdline")
ap.add_argument("--minivmm-arg", action="append", default=[],
                help="extra minivmm argument (repeatable), e.g. -v")
ap.add_argument("--qemu", default="qemu-system-x86_64")
ap.add_argument("--timeout", type=float, default=300)
ap.add_argument("--json", default=None, help="also write every measurement here")
ap.add_argument("--label", default="", help="free text recorded in the JSON")
args = ap.parse_args()


def minivmm_default_cmdline():
    out = subprocess.run([args.minivmm, "--help"], capture_output=True, text=True).stdout
    m = re.search(r'\(default: "([^"]*)"\)', out)
    if not m:
        sys.exit("boot-bench: cannot find the default command line in minivmm --help")
    return m.group(1)


CMDLINE = args.cmdline or minivmm_default_cmdline()
MEM_BYTES = args.mem << 20


BINARIES = {"minivmm": args.minivmm}
for spec in args.binary:
    name, _, path = spec.partition("=")
    if not name.startswith("minivmm") or not path:
        sys.exit(f"boot-bench: bad --binary '{spec}'")
    BINARIES[name] = path


def argv_for(vmm):
    if vmm.startswith("minivmm"):
        a = [BINARIES[vmm], "-k", args.kernel, "-i", args.initrd, "-m", f"{args.mem}M",
             "-c", "1", "--stats", *args.minivmm_arg]
        if args.cmdline:
            a += ["-p", args.cmdline]
        return a
    machine = vmm.split("+")[0]
    if machine not in ("microvm", "q35"):
        sys.exit(f"boot-bench: unknown VMM '{vmm}'")
    cmdline = CMDLINE if vmm.endswith("+cmd") else args.qemu_cmdline
    return [args.qemu, "-M", machine, "-accel", "kvm", "-cpu", "host", "-smp", "1",
            "-m", f"{args.mem}M", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", args.kernel,
            "-initrd", args.initrd, "-append", cmdline]


def guest_ram_rss_kib(pid):
    """Sum of Rss over anonymous mappings sized like guest RAM."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps") as f:
            match = False
            for line in f:
                m = MAP_RE.match(line)
                if m:
                    size = int(m.group(2), 16) - int(m.group(1), 16)
                    match = m.group(3) == "0" and MEM_BYTES <= size <= MEM_BYTES + (64 << 20)
                elif match and line.startswith("Rss:"):
                    total += int(line.split()[1])
    except OSError:
        return None
    return total


def boot_once(vmm):
    argv = argv_for(vmm)
    res = {"vmm": vmm}
    out = bytearray()
    err = bytearray()
    marker = threading.Event()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)

    def read_out():
        while True:
            b = os.read(p.stdout.fileno(), 65536)
            if not b:
                return
            out.extend(b)
            if not marker.is_set() and MARK in out:
                res["init_s"] = time.monotonic() - t0
                marker.set()

    def read_err():
        while True:
            b = os.read(p.stderr.fileno(), 65536)
            if not b:
                return
            err.extend(b)

    threads = [threading.Thread(target=read_out), threading.Thread(target=read_err)]
    for t in threads:
        t.start()
    guest_rss = None
    status = None
    ru = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > args.timeout:
            p.send_signal(signal.SIGKILL)
            _, status, ru = os.wait4(p.pid, 0)
            res["error"] = "timeout"
            break
        if marker.is_set():
            v = guest_ram_rss_kib(p.pid)
            if v:  # the mapping is gone while the VMM tears down: keep the max
                guest_rss = max(guest_rss or 0, v)
            time.sleep(0.1)
        else:
            marker.wait(0.5)
    res["exit_s"] = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    res["status"] = p.returncode
    res["maxrss_kib"] = ru.ru_maxrss
    res["guest_rss_kib"] = guest_rss
    if guest_rss is not None:
        res["overhead_kib"] = ru.ru_maxrss - guest_rss
    m = UPTIME_RE.search(bytes(out))
    if m:
        res["uptime_s"] = float(m.group(1))
    if "init_s" not in res and "error" not in res:
        res["error"] = "no init marker"
    res["stats"] = [ln for ln in err.decode(errors="replace").replace("\r", "").splitlines()
                    if ln.startswith("minivmm: stats:")]
    for ln in res["stats"]:
        m = re.search(r"memory: .*overhead ([0-9.]+) MiB", ln)
        if m:
            res["self_overhead_kib"] = float(m.group(1)) * 1024
    if "error" in res or p.returncode != 0:
        res["tail"] = (bytes(out[-800:]) + b"\n--stderr--\n" + bytes(err[-800:])).decode(
            errors="replace")
    return res


def med(rs, key):
    v = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(v) if v else None


def fmt(v, unit=""):
    return "-" if v is None else (f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")


def main():
    vmms = [v for v in args.vmms.split(",") if v]
    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "uname": os.uname().release,
        "nested_l1": os.environ.get("MINIVMM_NESTED_L1") == "1",
        "ncpu": os.cpu_count(),
        "qemu": subprocess.run([args.qemu, "--version"], capture_output=True,
                               text=True).stdout.splitlines()[0],
        "cmdline": CMDLINE, "qemu_cmdline": args.qemu_cmdline, "mem_mib": args.mem, "rounds": args.rounds,
        "kernel": os.path.realpath(args.kernel), "label": args.label,
    }
    print(f"boot-bench: {env['date']}, {'nested L1' if env['nested_l1'] else 'direct'} "
          f"({env['uname']}, {env['ncpu']} CPUs), {env['qemu']}", flush=True)
    print(f"boot-bench: minivmm and QEMU '+cmd' cmdline '{CMDLINE}'; plain QEMU cmdline "
          f"'{args.qemu_cmdline}'; {args.mem} MiB, 1 vCPU, {args.rounds} rounds", flush=True)
    runs = []
    for rnd in range(args.rounds):
        order = vmms[rnd % len(vmms):] + vmms[:rnd % len(vmms)]
        for vmm in order:
            r = boot_once(vmm)
            r["round"] = rnd
            runs.append(r)
            print(f"  round {rnd} {vmm:11s} init {fmt(r.get('init_s'), 's')} uptime "
                  f"{fmt(r.get('uptime_s'), 's')} exit {fmt(r.get('exit_s'), 's')} "
                  f"status {r['status']} maxrss {r['maxrss_kib'] / 1024:.1f}M guest "
                  f"{fmt((r.get('guest_rss_kib') or 0) / 1024, 'M')} overhead "
                  f"{fmt((r.get('overhead_kib') or 0) / 1024, 'M')}"
                  + (f" (own count {r['self_overhead_kib'] / 1024:.1f}M)"
                     if "self_overhead_kib" in r else "")
                  + (f"  ERROR {r['error']}" if "error" in r else ""), flush=True)
            for ln in r["stats"]:
                print(f"      {ln}", flush=True)
            if "tail" in r:
                print("      --- output tail ---\n" + r["tail"], flush=True)

    print("\nmedians:")
    print(f"  {'vmm':11s} {'launch->init':>12s} {'uptime@init':>12s} {'launch->exit':>12s} "
          f"{'peak RSS':>9s} {'guest RAM':>9s} {'overhead':>9s}")
    summary = {}
    for vmm in vmms:
        rs = [r for r in runs if r["vmm"] == vmm and "error" not in r]
        s = {k: med(rs, k) for k in ("init_s", "uptime_s", "exit_s", "maxrss_kib",
                                      "guest_rss_kib", "overhead_kib", "self_overhead_kib")}
        s["n"] = len(rs)
        summary[vmm] = s
        mib = (lambda k: None if s[k] is None else s[k] / 1024)
        print(f"  {vmm:11s} {fmt(s['init_s'], 's'):>12s} {fmt(s['uptime_s'], 's'):>12s} "
              f"{fmt(s['exit_s'], 's'):>12s} {fmt(mib('maxrss_kib'), 'M'):>9s} "
              f"{fmt(mib('guest_rss_kib'), 'M'):>9s} {fmt(mib('overhead_kib'), 'M'):>9s}"
              f"  (n={s['n']})"
              + (f" own count {mib('self_overhead_kib'):.1f}M" if s["self_overhead_kib"] else ""))
    for mv in [v for v in vmms if v.startswith("minivmm")]:
        m = summary[mv]
        for q in vmms:
            if q == mv or (mv != "minivmm" and q.startswith("minivmm")):
                continue
            parts = []
            for k, name in (("init_s", "launch->init"), ("uptime_s", "uptime@init"),
                            ("exit_s", "launch->exit")):
                if not (m[k] and summary[q][k]):
                    continue
                # Also the median of the per-round ratios: both boots of a
                # round ran back to back, so they saw the same machine load.
                per = [a[k] / b[k] for rnd in range(args.rounds)
                       for a in runs if a["vmm"] == mv and a["round"] == rnd
                       and a.get(k) and "error" not in a
                       for b in runs if b["vmm"] == q and b["round"] == rnd
                       and b.get(k) and "error" not in b]
                parts.append(f"{name} {m[k] / summary[q][k]:.2f}x"
                             + (f" (per round {statistics.median(per):.2f}x)" if per else ""))
                summary[q].setdefault(f"ratio_{mv}", {})[k] = m[k] / summary[q][k]
            print(f"  {mv}/{q}: " + ", ".join(parts))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "runs": runs, "summary": summary}, f, indent=1)
    return 0 if all("error" not in r and r["status"] == 0 for r in runs) else 1


sys.exit(main())
