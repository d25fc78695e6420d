#!/usr/bin/env python3
"""End-to-end boot tests (issue: boot a stock kernel to a serial console).

Needs a working /dev/kvm: run through tests/e2e/run-boot-tests, which builds
the guest and goes through tests/nested/run.  Every case checks what the
GUEST printed (or minivmm's exit status and message), and a failing case is
retried once, saying so, because nested virtualization is not perfectly
stable.  Ends with the line 'N passed, M failed'."""
import argparse
import os
import re
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drive import Run  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--minivmm", required=True)
ap.add_argument("--kernel", required=True)
ap.add_argument("--initrd", required=True)
ap.add_argument("--only", default="")
ap.add_argument("--logdir", default="/tmp/minivmm-e2e")
args = ap.parse_args()
os.makedirs(args.logdir, exist_ok=True)

QUIET = "console=ttyS0 8250.nr_uarts=1 io_delay=none no_timer_check tsc=reliable panic=1 quiet"
cases = []


def case(fn):
    cases.append(fn)
    return fn


class Fail(Exception):
    pass


def check(cond, msg, run=None):
    if not cond:
        if run is not None:
            msg += "\n--- output (last 1500 chars) ---\n" + run.text()[-1500:]
        raise Fail(msg)


def vmm(*extra, cmdline=QUIET, pty=False, timeout=300):
    argv = [args.minivmm, "-k", args.kernel, "-i", args.initrd, "-p", cmdline, *extra]
    return Run(argv, use_pty=pty, timeout=timeout)


def boot_and_poweroff(*extra, cmdline=QUIET):
    r = vmm(*extra, cmdline=cmdline)
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init", r)
    r.send("poweroff\n")
    rc = r.wait()
    check(rc == 0, f"exit status {rc} after poweroff, expected 0", r)
    return r


@case
def banner_init_cmdline_poweroff():
    # Not quiet, so the kernel banner must appear on the serial console.
    r = boot_and_poweroff(cmdline="console=ttyS0 8250.nr_uarts=1 mvtoken=abc123")
    t = r.text()
    check("Linux version 6." in t, "no kernel banner on the console", r)
    check(r.value("MVT-NPROC") == "1", "init output not seen", r)
    check("mvtoken=abc123" in (r.value("MVT-CMDLINE") or ""), "cmdline did not reach /proc/cmdline", r)
    # Our firmware tables must not upset the kernel.
    check("ACPI Error" not in t and "ACPI BIOS Error" not in t, "ACPI errors in the boot log", r)
    check("PCI host bridge to bus 0000:00" in t, "PCI root bridge from the DSDT not found", r)


@case
def default_cmdline_is_quiet_and_powers_off():
    r = vmm("-m", "256M", cmdline=None) if False else Run(
        [args.minivmm, "-k", args.kernel, "-i", args.initrd, "-m", "256M"], timeout=300)
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init with the default cmdline", r)
    r.send("poweroff\n")
    check(r.wait() == 0, "poweroff did not give exit 0", r)
    check("Linux version" not in r.text(), "default cmdline is not quiet", r)
    check("console=ttyS0" in (r.value("MVT-CMDLINE") or ""), "default cmdline lacks console=ttyS0", r)


def nproc_case(n):
    def fn():
        r = boot_and_poweroff("-c", str(n))
        check(r.value("MVT-NPROC") == str(n), f"guest nproc {r.value('MVT-NPROC')} != {n}", r)
    fn.__name__ = f"nproc_{n}"
    return fn


for _n in (1, 2, 4):
    case(nproc_case(_n))


def mem_case(size, mib):
    def fn():
        r = boot_and_poweroff("-m", size)
        kb = int(r.value("MVT-MEMTOTAL-KB") or 0)
        # MemTotal excludes the kernel image, memmap and early reservations:
        # Debian's 6.1 kernel shows 89% of 512 MiB.  Never above what we gave;
        # a lost high-memory slot would show ~60% of 5G and fail.
        check(0.85 * mib * 1024 <= kb <= mib * 1024,
              f"MemTotal {kb} kB not within 15% below {mib} MiB", r)
    fn.__name__ = f"memory_{size}"
    return fn


case(mem_case("512M", 512))
case(mem_case("5G", 5120))  # crosses the PCI hole: RAM above 4 GiB


@case
def console_input_reaches_guest():
    r = vmm()
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init", r)
    r.send("echo $((6*7))-typed\n")
    check(r.expect("MVT-ECHO=42-typed"), "typed command not executed by the guest", r)
    r.send("poweroff\n")
    check(r.wait() == 0, "poweroff did not give exit 0", r)


@case
def console_input_from_a_regular_file():
    # A file cannot be polled; minivmm reads it as the guest makes room.
    path = os.path.join(args.logdir, "console-input.txt")
    with open(path, "w") as f:
        f.write("echo $((6*7))-from-file\npoweroff\n")
    with open(path) as f:
        p = subprocess.run([args.minivmm, "-k", args.kernel, "-i", args.initrd, "-p", QUIET],
                           stdin=f, capture_output=True, timeout=300)
    out = p.stdout.decode(errors="replace")
    check("MVT-ECHO=42-from-file" in out, "command from a file not executed:\n" + out[-1500:])
    check(p.returncode == 0, f"exit {p.returncode} after poweroff from a file")


@case
def reboot_restarts_once():
    r = vmm()
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init", r)
    r.send("reboot\n")
    check(r.expect("MVT-BOOT-MARK", count=2), "guest did not come back after reboot", r)
    r.send("poweroff\n")
    check(r.wait() == 0, "poweroff after reboot did not give exit 0", r)
    check(r.text().count("MVT-BOOT-MARK") == 2, "expected exactly two boots", r)


@case
def no_reboot_exits_zero():
    r = vmm("--no-reboot")
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init", r)
    r.send("reboot\n")
    rc = r.wait()
    check(rc == 0, f"--no-reboot: exit {rc}, expected 0", r)
    check(r.text().count("MVT-BOOT-MARK") == 1, "guest booted again despite --no-reboot", r)


@case
def ctrl_a_x_quits_from_a_terminal():
    r = vmm(pty=True)
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init on a pty", r)
    r.send(b"\x01x")
    rc = r.wait()
    check(rc == 0, f"Ctrl-A x: exit {rc}, expected 0", r)


@case
def sigterm_tears_down():
    r = vmm()
    check(r.expect("MVT-BOOT-MARK"), "guest did not reach init", r)
    r.p.terminate()
    rc = r.wait()
    check(rc == 0, f"SIGTERM: exit {rc}, expected 0 (clean teardown)", r)


def fake_kernel(code):
    """A minimal bzImage (boot protocol 2.15, 64-bit entry) whose
    startup_64 is `code`: the kernel side of a guest failure."""
    import struct
    setup = bytearray(5 * 512)
    setup[0x1f1] = 4
    struct.pack_into("<H", setup, 0x1fe, 0xAA55)
    setup[0x200:0x202] = b"\xeb\x6a"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020f)
    struct.pack_into("<I", setup, 0x22c, 0x7fffffff)
    struct.pack_into("<I", setup, 0x230, 0x200000)
    setup[0x234] = 1
    struct.pack_into("<H", setup, 0x236, 3)
    struct.pack_into("<I", setup, 0x238, 2047)
    struct.pack_into("<Q", setup, 0x258, 0x1000000)
    struct.pack_into("<I", setup, 0x260, 0x100000)
    body = bytearray(0x1000)
    body[0x200:0x200 + len(code)] = code
    path = os.path.join(args.logdir, "fake-bzImage")
    with open(path, "wb") as f:
        f.write(bytes(setup) + bytes(body))
    return path


@case
def triple_fault_exits_2_with_registers():
    # ud2 with the boot IDT (limit 0): #UD -> #GP -> #DF -> triple fault.
    k = fake_kernel(b"\x0f\x0b")
    r = Run([args.minivmm, "-k", k, "-m", "64M"], timeout=120)
    rc = r.wait()
    t = r.text()
    check(rc == 2, f"triple fault: exit {rc}, expected 2", r)
    check("SHUTDOWN (triple fault)" in t, "exit reason not printed", r)
    # On AMD, KVM re-initialises the VMCB after a shutdown intercept, so the
    # registers shown are the reset state; they must be printed all the same.
    check(re.search(r"rip [0-9a-f]{16} rsp", t) and "cr0 " in t, "registers not printed", r)


def bad(argv, pattern, env_prefix=()):
    """Bad input: exit status 1 and one clear line naming the problem."""
    p = subprocess.run([*env_prefix, args.minivmm, *argv], capture_output=True,
                       text=True, timeout=60)
    err = p.stderr.strip()
    check(p.returncode == 1, f"{argv}: exit {p.returncode}, expected 1; stderr: {err}")
    check(len(err.splitlines()) == 1, f"{argv}: expected one line on stderr, got: {err!r}")
    check(pattern in err, f"{argv}: stderr {err!r} lacks {pattern!r}")


@case
def bad_inputs():
    k, i = args.kernel, args.initrd
    bad([], "no kernel given")
    bad(["-k", "/nonexistent/bzImage"], "kernel '/nonexistent/bzImage': No such file")
    bad(["-k", i], "not a Linux bzImage")
    bad(["-k", k, "-i", "/nonexistent.img"], "initrd '/nonexistent.img'")
    bad(["-k", k, "-m", "lots"], "-m lots: not a size")
    bad(["-k", k, "-m", "1M"], "memory must be between")
    bad(["-k", k, "-m", "9999G"], "memory must be between")
    bad(["-k", k, "-i", i, "-m", "40M"], "give the VM more with -m")  # too little for this kernel
    bad(["-k", k, "-c", "0"], "vCPUs must be from 1 to")
    bad(["-k", k, "-c", "two"], "vCPUs must be from 1 to")
    bad(["-k", k, "--frobnicate"], "unknown option --frobnicate")
    bad(["-k", k, "-d", "disk.img,bogus=1"], "bad option 'bogus=1'")
    bad(["-k", k, "-n", "mac=zz"], "not a unicast MAC")
    # No /dev/kvm: hide it behind an empty /dev in a private mount namespace.
    bad(["-k", k], "/dev/kvm does not exist",
        env_prefix=["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev && exec "$0" "$@"'])
    # No permission: an unprivileged user.
    bad(["-k", k], "/dev/kvm: permission denied",
        env_prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])


def main():
    passed = failed = 0
    for fn in cases:
        if args.only and args.only not in fn.__name__:
            continue
        for attempt in (1, 2):
            try:
                fn()
                print(f"PASS {fn.__name__}" + (" (on retry)" if attempt == 2 else ""), flush=True)
                passed += 1
                break
            except Exception as e:  # noqa: BLE001
                msg = str(e) if isinstance(e, Fail) else traceback.format_exc()
                with open(os.path.join(args.logdir, fn.__name__ + ".log"), "a") as f:
                    f.write(f"attempt {attempt}: {msg}\n")
                if attempt == 1:
                    print(f"RETRY {fn.__name__}: failed once, retrying: {msg.splitlines()[0]}", flush=True)
                else:
                    print(f"FAIL {fn.__name__}: {msg}", flush=True)
                    failed += 1
    print(f"boot: {passed} passed, {failed} failed")
    return 1 if failed else 0


sys.exit(main())
