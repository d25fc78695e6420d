#!/usr/bin/env python3
"""End-to-end network tests (issue #6: virtio-net over tap).

Runs as root with a working /dev/kvm and the tun/bridge/vhost_net modules:
through tests/e2e/run-net-tests, which goes through `tests/nested/run --net`.
Every bridge, tap and namespace is created here and removed afterwards; all
addresses are in 198.18.0.0/15 (RFC 2544 benchmarking space) and nothing is
routed anywhere else.  Checks look at what the guest and the host kernel
report (ping replies, md5 of transferred data, /proc/interrupts, TCP MSS),
never at minivmm's own claims -- except the --stats case, which is about
those counters.  A failing case is retried once (printing RETRY).  Ends with
'net: N passed, M failed'."""
import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drive import Run  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--minivmm", required=True)
ap.add_argument("--kernel", required=True)
ap.add_argument("--initrd", required=True)
ap.add_argument("--repo", default=".")
ap.add_argument("--only", default="", help="comma-separated substrings of case names")
ap.add_argument("--mbytes", type=int, default=int(os.environ.get("MVT_NET_MB", "64")))
ap.add_argument("--logdir", default="/tmp/minivmm-e2e-net")
args = ap.parse_args()
os.makedirs(args.logdir, exist_ok=True)

BR, HOST = "mvtbr0", "198.18.0.1"
CMDLINE = "console=ttyS0 8250.nr_uarts=1 io_delay=none no_timer_check tsc=reliable panic=1 quiet"
cases = []
GUESTS = []


def case(fn):
    cases.append(fn)
    return fn


class Fail(Exception):
    pass


def check(cond, msg, run=None):
    if not cond:
        if run is not None:
            msg += "\n--- output (last 2000 chars) ---\n" + run.text()[-2000:]
        raise Fail(msg)


def sh(cmd, check_rc=True):
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check_rc and p.returncode:
        raise Fail(f"host command failed ({p.returncode}): {cmd}\n{p.stdout}{p.stderr}")
    return p.stdout


def cleanup():
    for cmd in ("ip link del mvtbr0", "ip link del mvtbr1", "ip netns del mvt-wan",
                "ip link del mvtveth0", "nft delete table ip minivmm-mvtbr1"):
        sh(cmd + " 2>/dev/null", check_rc=False)
    for t in ("mvt0", "mvt1", "mvtmq"):
        sh(f"ip link del {t} 2>/dev/null", check_rc=False)


def udev_like_perms():
    """What udev does on a normal host (the harness's L1 has a bare
    devtmpfs): /dev/net/tun is 0666; /dev/kvm is opened up so that an
    unprivileged minivmm can run at all."""
    os.chmod("/dev/net/tun", 0o666)
    os.chmod("/dev/kvm", 0o666)


def bridge(mtu=1500):
    sh(f"ip link add {BR} type bridge && ip link set {BR} mtu {mtu} && "
       f"ip addr add {HOST}/24 dev {BR} && ip link set {BR} up")


def tap(name, mq=False, user=None, mtu=1500, br=BR):
    sh(f"ip tuntap add dev {name} mode tap{' multi_queue' if mq else ''}"
       f"{' user ' + str(user) if user is not None else ''}")
    sh(f"ip link set {name} mtu {mtu} && ip link set {name} master {br} up")


class Guest:
    """One minivmm with the net init: commands are framed by the guest as
    MVT-BEGIN-n / MVT-END-n rc=N."""

    def __init__(self, net, ip, cpus=1, mtu=None, user=None, mem="512M", extra=()):
        cmdline = CMDLINE + f" mvt.ip={ip}/24" + (f" mvt.mtu={mtu}" if mtu else "")
        argv = [args.minivmm, "-k", args.kernel, "-i", args.initrd, "-m", mem,
                "-c", str(cpus), "--stats", "-n", net, *extra, "-p", cmdline]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        # 300 s: a healthy case takes under 90 s nested; a hung guest (seen
        # once at the end of multiqueue_2) is then retried instead of
        # holding the suite for 15 minutes.
        self.r = Run(argv, timeout=300)
        GUESTS.append(self)
        self.n = 0
        self.ip = ip
        check(self.r.expect("MVT-NET-UP"), f"guest {ip} did not come up", self.r)

    def start(self, line):
        self.n += 1
        self.r.send(line + "\n")
        return self.n

    def result(self, n):
        check(self.r.expect(rf"MVT-END-{n} rc=\d+"), f"command {n} did not finish", self.r)
        t = self.r.text()
        m = re.search(rf"MVT-BEGIN-{n}\r?\n(.*?)MVT-END-{n} rc=(\d+)", t, re.S)
        check(m, f"cannot parse the output of command {n}", self.r)
        return int(m.group(2)), m.group(1)

    def cmd(self, line):
        return self.result(self.start(line))

    def ok(self, line):
        rc, out = self.cmd(line)
        check(rc == 0, f"guest command '{line}' failed ({rc}): {out}", self.r)
        return out

    def poweroff(self):
        self.r.send("poweroff\n")
        rc = self.r.wait()
        check(rc == 0, f"minivmm exit {rc} after poweroff", self.r)
        return self.r.text()


def ping_ok(out, n):
    m = re.search(r"(\d+) packets transmitted, (\d+) (packets )?received", out)
    return m and int(m.group(2)) >= n


def host_ping(ip, count=3, size=56, ns=""):
    pre = f"ip netns exec {ns} " if ns else ""
    return sh(f"{pre}busybox ping -c {count} -s {size} -W 5 {ip}", check_rc=False)


def connect_retry(addr, deadline=60):
    end = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection(addr, timeout=30)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


def transfer(g, nbytes):
    """Random data host -> guest (guest stores it and prints its md5), then
    the same file guest -> host; both md5s must match the host's.  Returns
    (seconds host->guest, seconds guest->host)."""
    data = os.urandom(nbytes)
    want = hashlib.md5(data).hexdigest()
    n = g.start("nc -l -p 5001 > /tmp/r; md5sum /tmp/r")
    s = connect_retry((g.ip.split("/")[0], 5001))
    t0 = time.monotonic()
    s.sendall(data)
    s.close()
    rc, out = g.result(n)
    t1 = time.monotonic() - t0
    check(rc == 0 and want in out, f"host->guest md5 mismatch: want {want}, guest says {out!r}", g.r)
    # guest -> host
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, 5002))
    srv.listen(1)
    srv.settimeout(120)
    n = g.start(f"nc {HOST} 5002 < /tmp/r")
    c, _ = srv.accept()
    c.settimeout(300)
    h, got, t0 = hashlib.md5(), 0, time.monotonic()
    while got < nbytes:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        got += len(d)
    t2 = time.monotonic() - t0
    c.close()
    srv.close()
    g.result(n)
    check(got == nbytes and h.hexdigest() == want,
          f"guest->host: got {got} bytes md5 {h.hexdigest()}, want {nbytes} {want}", g.r)
    print(f"  transfer {nbytes >> 20} MiB: host->guest {t1:.1f} s "
          f"({nbytes / t1 / 1e6 * 8:.0f} Mbit/s), guest->host {t2:.1f} s "
          f"({nbytes / t2 / 1e6 * 8:.0f} Mbit/s)", flush=True)
    return t1, t2


def stats_line(text):
    m = re.search(r"virtio-net0 \([^)]*\): rx (\d+) packets.*?tx (\d+) packets.*?"
                  r"per packet: kicks ([\d.]+), interrupts ([\d.]+)", text)
    return m


@case
def hostonly_ping_transfer_stats():
    bridge()
    tap("mvt0")
    g = Guest("tap=mvt0", "198.18.0.2")
    out = g.ok(f"ping -c 3 -W 5 {HOST}")
    check(ping_ok(out, 3), f"guest->host ping failed: {out}", g.r)
    out = host_ping("198.18.0.2")
    check(ping_ok(out, 3), f"host->guest ping failed: {out}", g.r)
    transfer(g, args.mbytes << 20)
    text = g.poweroff()
    m = stats_line(text)
    check(m, "--stats printed no virtio-net line with per-packet kicks/interrupts", g.r)
    rxp, txp = int(m.group(1)), int(m.group(2))
    check(rxp > 1000 and txp > 1000, f"implausible packet counts rx {rxp} tx {txp}", g.r)
    print(f"  stats: {m.group(0)[:60]}... kicks/packet {m.group(3)}, interrupts/packet {m.group(4)}")


@case
def jumbo_mtu_9000():
    bridge(9000)
    tap("mvt0", mtu=9000)
    g = Guest("tap=mvt0", "198.18.0.2", mtu=9000)
    check("mtu 9000" in g.ok("ip link show eth0"), "guest eth0 MTU is not 9000", g.r)
    out = g.ok(f"ping -c 2 -s 8900 -W 5 {HOST}")
    check(ping_ok(out, 2), f"guest->host 8900-byte ping failed: {out}", g.r)
    check(ping_ok(host_ping("198.18.0.2", 2, 8900), 2), "host->guest 8900-byte ping failed", g.r)
    # The guest's SYN carries its MSS: 8960 only if its MTU 9000 is in effect
    # on the path the host sees.
    n = g.start("nc -l -p 5005 > /dev/null")
    s = connect_retry(("198.18.0.2", 5005))
    mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    s.sendall(os.urandom(1 << 20))
    s.close()
    g.result(n)
    check(mss > 8000, f"TCP MSS {mss}: jumbo frames not in effect", g.r)
    transfer(g, min(args.mbytes, 16) << 20)
    g.poweroff()


@case
def two_guests_one_bridge_unprivileged():
    bridge()
    tap("mvt0")
    tap("mvt1", user=65534)
    # The second minivmm runs as nobody on a tap made for that user: no
    # privilege needed beyond /dev/kvm.
    udev_like_perms()
    a = Guest("tap=mvt0", "198.18.0.2")
    b = Guest("tap=mvt1", "198.18.0.3", user=65534)
    ma, mb = a.r.value("MVT-MAC"), b.r.value("MVT-MAC")
    check(ma and mb and ma != mb, f"guests share a MAC: {ma} {mb}", b.r)
    out = a.ok("ping -c 3 -W 5 198.18.0.3")
    check(ping_ok(out, 3), f"guest A -> guest B ping failed: {out}", a.r)
    out = b.ok("ping -c 3 -W 5 198.18.0.2")
    check(ping_ok(out, 3), f"guest B -> guest A ping failed: {out}", b.r)
    a.poweroff()
    b.poweroff()


@case
def nat_masquerade():
    # "WAN": a namespace behind a veth, 198.19.0.2; the host is 198.19.0.1.
    sh("ip netns add mvt-wan && ip link add mvtveth0 type veth peer name eth0 netns mvt-wan")
    sh("ip addr add 198.19.0.1/24 dev mvtveth0 && ip link set mvtveth0 up")
    sh("ip -n mvt-wan addr add 198.19.0.2/24 dev eth0 && ip -n mvt-wan link set eth0 up "
       "&& ip -n mvt-wan link set lo up")
    # The WAN side has no route back to 198.18.1.0/24: replies only come
    # back if the source address was rewritten.
    sh(f"{args.repo}/scripts/netsetup nat up --bridge mvtbr1 --addr 198.18.1.1/24 "
       "--uplink mvtveth0 --tap mvt0")
    sh(f"{args.repo}/scripts/netsetup nat up --bridge mvtbr1 --addr 198.18.1.1/24 "
       "--uplink mvtveth0 --tap mvt0")  # idempotent: a second run changes nothing
    g = Guest("tap=mvt0", "198.18.1.2")
    g.ok("ip route add default via 198.18.1.1")
    out = g.ok("ping -c 3 -W 5 198.19.0.2")
    check(ping_ok(out, 3), f"guest -> WAN ping through NAT failed: {out}", g.r)
    # A TCP listener in the WAN namespace reports the peer it sees.
    lst = subprocess.Popen(["ip", "netns", "exec", "mvt-wan", "python3", "-c",
                            "import socket;s=socket.socket();s.bind(('198.19.0.2',5006));"
                            "s.listen();print('READY',flush=True);c,a=s.accept();"
                            "print('PEER',a[0],flush=True);"
                            "c.sendall(b'hello-from-wan\\n');c.close()"],
                           stdout=subprocess.PIPE, text=True)
    check(lst.stdout.readline().strip() == "READY", "WAN listener did not start")
    out = g.ok("nc 198.19.0.2 5006 </dev/null")
    peer = lst.communicate(timeout=60)[0]
    check("hello-from-wan" in out, f"guest got no data from the WAN: {out}", g.r)
    check("PEER 198.19.0.1" in peer, f"WAN saw {peer!r}, expected the masqueraded 198.19.0.1", g.r)
    g.poweroff()
    sh(f"{args.repo}/scripts/netsetup nat down --bridge mvtbr1 --uplink mvtveth0 --tap mvt0")
    check("mvtbr1" not in sh("ip -o link"), "netsetup nat down left the bridge")
    check("minivmm" not in sh("nft list tables"), "netsetup nat down left nftables rules")


@case
def vhost_transfer():
    bridge()
    tap("mvt0")
    g = Guest("tap=mvt0,vhost=on", "198.18.0.2")
    check("vhost on" in g.r.text() and "falling back" not in g.r.text()
          and "userspace datapath" not in g.r.text(), "vhost-net was not used", g.r)
    out = g.ok(f"ping -c 3 -W 5 {HOST}")
    check(ping_ok(out, 3), f"guest->host ping failed with vhost: {out}", g.r)
    transfer(g, args.mbytes << 20)
    text = g.poweroff()
    m = stats_line(text)
    check(m and int(m.group(1)) + int(m.group(2)) < 100,
          "with vhost the packets should bypass minivmm (userspace counters near 0)", g.r)


def virtio_irqs(out):
    """{'input.0': n, ...} summed over CPUs from /proc/interrupts."""
    res = {}
    for line in out.splitlines():
        m = re.search(r"virtio\d+-(input|output)\.(\d+)", line)
        if m:
            nums = [int(x) for x in line.split(":", 1)[1].split() if x.isdigit()]
            res[f"{m.group(1)}.{m.group(2)}"] = sum(nums)
    return res


def mq_case(vhost):
    def fn():
        bridge()
        tap("mvtmq", mq=True)
        g = Guest("tap=mvtmq,queues=2" + (",vhost=on" if vhost else ""), "198.18.0.2", cpus=2)
        check("2 queue pairs" in g.r.text(), "minivmm did not announce 2 queue pairs", g.r)
        before = virtio_irqs(g.ok("cat /proc/interrupts"))
        check("input.1" in before, f"guest has no second RX queue: {before}", g.r)
        # 8 flows from the host: the tap hashes flows over its queues.
        nflows = 8
        g.ok(" ; ".join(f"(nc -l -p {5100 + i} > /dev/null &)" for i in range(nflows)))
        socks = [connect_retry(("198.18.0.2", 5100 + i)) for i in range(nflows)]
        blob = os.urandom(2 << 20)
        ths = [threading.Thread(target=s.sendall, args=(blob,)) for s in socks]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        for s in socks:
            s.close()
        after = virtio_irqs(g.ok("cat /proc/interrupts"))
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        print(f"  interrupts during {nflows} flows: {delta}", flush=True)
        check(delta.get("input.0", 0) > 5 and delta.get("input.1", 0) > 5,
              f"RX traffic not spread over both queues: {delta}", g.r)
        g.poweroff()
    fn.__name__ = "multiqueue_2" + ("_vhost" if vhost else "")
    return fn


case(mq_case(False))
case(mq_case(True))


def bad(argv, pattern, prefix=()):
    p = subprocess.run([*prefix, args.minivmm, "-k", args.kernel, *argv],
                       capture_output=True, text=True, timeout=120)
    err = p.stderr.strip()
    check(p.returncode == 1, f"{argv}: exit {p.returncode}, expected 1; stderr: {err}")
    check(len(err.splitlines()) == 1, f"{argv}: expected one line on stderr, got: {err!r}")
    check(re.search(pattern, err), f"{argv}: stderr {err!r} lacks {pattern!r}")


@case
def bad_inputs():
    udev_like_perms()
    bad(["-n", "tap=mvt0,mac=52:54:00:zz:00:01"], "not a unicast MAC")
    bad(["-n", "tap=mvt0,mac=01:00:5e:00:00:01"], "not a unicast MAC")  # multicast
    bad(["-n", "tap=mvt0,speed=fast"], "bad option 'speed=fast'")
    bad(["-n", "tap=mvt0,queues=0"], "queues=0")
    bad(["-n", "tap=a-very-long-interface-name"], "1 to 15 characters")
    bad(["-n", "mac=52:54:00:00:00:01"], "needs tap=")
    # No permission: nobody may not create a tap, nor attach to root's.
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    bad(["-n", "tap=mvtnope"], "tap mvtnope: permission denied", nobody)
    # (A tap with no owner is open to everyone with /dev/net/tun; this one
    # belongs to root.)
    sh("ip tuntap add dev mvt0 mode tap user 0")
    bad(["-n", "tap=mvt0"], "tap mvt0: permission denied", nobody)
    # A single-queue tap asked for 2 queues.
    bad(["-n", "tap=mvt0,queues=2"], "multi_queue")
    # Not a tap at all.
    sh("ip link add mvtbr0 type bridge")
    bad(["-n", "tap=mvtbr0"], "not a .*tap device")
    # No /dev/net/tun (hidden in a private mount namespace).
    bad(["-n", "tap=mvt0"], "/dev/net/tun does not exist",
        ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev/net && exec "$0" "$@"'])


def main():
    passed = failed = 0
    for fn in cases:
        if args.only and not any(o in fn.__name__ for o in args.only.split(",")):
            continue
        for attempt in (1, 2):
            cleanup()
            t0 = time.monotonic()
            try:
                fn()
                print(f"PASS {fn.__name__} ({time.monotonic() - t0:.0f} s)"
                      + (" (on retry)" if attempt == 2 else ""), flush=True)
                passed += 1
                break
            except Exception as e:  # noqa: BLE001
                msg = str(e) if isinstance(e, Fail) else traceback.format_exc()
                with open(os.path.join(args.logdir, fn.__name__ + ".log"), "a") as f:
                    f.write(f"attempt {attempt}: {msg}\n")
                if attempt == 1:
                    print(f"RETRY {fn.__name__}: failed once, retrying: {msg.splitlines()[0]}",
                          flush=True)
                else:
                    print(f"FAIL {fn.__name__}: {msg}", flush=True)
                    failed += 1
            finally:
                for g in GUESTS:
                    if g.r.p.poll() is None:
                        g.r.p.kill()
                        g.r.p.wait()
                GUESTS.clear()
                cleanup()
    print(f"net: {passed} passed, {failed} failed")
    return 1 if failed else 0


sys.exit(main())
