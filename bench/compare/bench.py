#!/usr/bin/env python3
"""Side-by-side dnsperf comparison of authoritative DNS servers; driven by run.sh.

For each round, and in each round for each server (the order rotates from round to round):
  1. write a minimal configuration for the zone set, on the server's own 127.0.0.1 port;
  2. start the server pinned to CPU 0 (`taskset -c 0`), with one worker;
  3. time the cold start: from spawn until every readiness probe is answered (the zone's
     SOA and a name from the end of the zone file; for the 10k set, the SOA of 11 zones);
  4. check one known name per mix with `dig` (expected rcode, AA flag, answer and authority
     types) and refuse to measure a mix that is answered wrongly;
  5. read the memory of the server's processes (VmHWM, VmRSS, Pss from /proc);
  6. warm up, then run dnsperf pinned to CPU 1 once per mix;
  7. stop the server (SIGTERM to its process group, SIGKILL after 10 s).

The configuration comes from the environment (see run.sh and README.md). Every server
started is in its own process group, listed in WORK/run/pgids until it is stopped, so that
run.sh's EXIT trap can stop anything left behind.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# CPUs as taskset takes them ("0", "0,1"); BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS move them.
SERVER_CPU = os.environ.get("BENCH_SERVER_CPUS", "0")
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPUS", "1")
# Workers per server (NSD server-count, Knot udp-workers, named -n, hickory --workers,
# dns-pod --udp-workers): BENCH_WORKERS.
WORKERS = int(os.environ.get("BENCH_WORKERS", "1") or "1")
# dnsperf -Q: the offered load in queries/s, 0 for as fast as it goes (BENCH_RATE).
RATE = int(os.environ.get("BENCH_RATE", "0") or "0")
# dnsperf -T: its threads (one is the limit near 150,000 queries/s on our cores).
CLIENT_THREADS = int(os.environ.get("BENCH_CLIENT_THREADS", "1") or "1")
STOP_TIMEOUT = 10.0


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_list(name: str, default: str) -> list[str]:
    return os.environ.get(name, default).replace(",", " ").split()


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\nbench: ERROR: {message}\n{bar}\n", file=sys.stderr, flush=True)


# --- a minimal DNS client for readiness polling ------------------------------------------

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def dns_query(port: int, qname: str, qtype: str, timeout: float = 0.2):
    """Sends one UDP query to 127.0.0.1:port; returns (rcode name, aa, ancount) or None."""
    qid = random.getrandbits(16)
    wire = b"".join(
        bytes([len(label)]) + label.encode("ascii") for label in qname.rstrip(".").split(".")
    ) + b"\x00"
    packet = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack(">HH", QTYPES[qtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, ("127.0.0.1", port))
            while True:
                data, _ = sock.recvfrom(65535)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    break
        except OSError:
            return None
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", data[:12])
    return RCODES.get(flags & 0xF, str(flags & 0xF)), bool(flags & 0x0400), ancount


def probe_ok(port: int, probe: dict) -> bool:
    reply = dns_query(port, probe["qname"], probe["qtype"])
    if reply is None:
        return False
    rcode, aa, ancount = reply
    if rcode != probe["rcode"]:
        return False
    return rcode != "NOERROR" or (aa and ancount > 0)


# --- dig checks -----------------------------------------------------------------------------


def dig(port: int, qname: str, qtype: str) -> str:
    result = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), qname, qtype, "+norecurse", "+time=2",
         "+tries=2", "+nocookie", "+noall", "+comments", "+answer", "+authority"],
        capture_output=True, text=True, timeout=30, check=False)
    return result.stdout + result.stderr


def parse_dig(text: str) -> dict:
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r";; flags: ([a-z ]*);", text)
    sections: dict[str, list[str]] = {"ANSWER": [], "AUTHORITY": []}
    current = None
    for line in text.splitlines():
        header = re.match(r";; (\w+) SECTION:", line)
        if header:
            current = header.group(1)
            continue
        if not line.strip() or line.startswith(";"):
            continue
        fields = line.split()
        if current in sections and len(fields) >= 4:
            sections[current].append(fields[3])
    return {
        "rcode": status.group(1) if status else None,
        "aa": bool(flags and "aa" in flags.group(1).split()),
        "answer": sections["ANSWER"],
        "authority": sections["AUTHORITY"],
    }


def check_answer(port: int, check: dict) -> tuple[str, str]:
    """Digs `check` and compares rcode, AA and the answer/authority types.

    Returns ("ok" | "deviation" | "wrong", explanation). A wrong rcode, answer or authority
    is "wrong" (the mix is not measured); a wrong AA flag alone is a "deviation" (the mix is
    measured, since the server does the same work, and the deviation is reported)."""
    text = dig(port, check["qname"], check["qtype"])
    got = parse_dig(text)
    problems = []
    if got["rcode"] != check["rcode"]:
        problems.append(f"rcode {got['rcode']} (expected {check['rcode']})")
    want_answer = check.get("answer", [])
    if sorted(set(got["answer"])) != sorted(set(want_answer)):
        problems.append(f"answer types {got['answer'] or 'none'} (expected {want_answer or 'none'})")
    for rtype in check.get("authority", []):
        if rtype not in got["authority"]:
            problems.append(f"authority lacks {rtype} (has {got['authority'] or 'none'})")
    summary = f"dig {check['qname']} {check['qtype']}: "
    if problems:
        return "wrong", summary + "; ".join(problems) + "\n" + text
    if got["aa"] != check["aa"]:
        return "deviation", (summary + f"AA={int(got['aa'])} (expected {int(check['aa'])}), "
                             "otherwise as expected\n" + text)
    return "ok", summary + f"{got['rcode']} aa={int(got['aa'])} answer={got['answer']}"


# --- process handling -----------------------------------------------------------------------


def port_free(port: int) -> bool:
    """Whether a server could bind the port: for TCP with SO_REUSEADDR, as the servers bind,
    so connections of an earlier run left in TIME_WAIT do not count."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def group_pids(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Field 5 (pgrp) follows the parenthesized command name.
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 2 and int(rest[2]) == pgid and rest[0] != "Z":
            pids.append(int(entry))
    return pids


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pgid: int) -> dict:
    """Memory of a server's processes: the largest VmHWM and VmRSS, and the summed Pss.

    NSD forks (a main process, xfrd, one server process) and they share the zone data
    copy-on-write, so the summed RSS would count it thrice; the largest VmHWM is the peak
    of the biggest process and the summed Pss is what the group really holds now."""
    pids = group_pids(pgid)
    return {
        "processes": len(pids),
        "hwm_kib": max((status_kib(p, "VmHWM") for p in pids), default=0),
        "rss_kib": max((status_kib(p, "VmRSS") for p in pids), default=0),
        "pss_kib": sum(pss_kib(p) for p in pids),
    }


CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every process in the group (all threads)."""
    ticks = 0
    for pid in group_pids(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        ticks += int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)
    return ticks / CLK_TCK


def cpu_busy_seconds(cpus: tuple[int, ...]) -> float:
    """Time the given CPUs spent in user, nice and system mode (no irq, softirq)."""
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name = line.split(" ", 1)[0]
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            fields = [int(x) for x in line.split()[1:]]
            total += fields[0] + fields[1] + fields[2]
    return total / CLK_TCK


def children_cpu_seconds() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_set(spec: str) -> set[int]:
    """The CPUs of a taskset list such as "0", "0,1" or "0-1"."""
    cpus: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def affinity_problems(pgid: int) -> list[str]:
    """Threads of the server allowed to run on CPUs outside SERVER_CPU."""
    problems = []
    for pid in group_pids(pgid):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                cpus = os.sched_getaffinity(int(tid))
            except OSError:
                continue
            # A server may pin its own threads to single CPUs of the set (Knot does).
            if not cpus <= cpu_set(SERVER_CPU):
                problems.append(f"pid {pid} thread {tid} may run on CPUs {sorted(cpus)}")
    return problems


@dataclass
class Running:
    name: str
    proc: subprocess.Popen
    log_path: Path
    started: float


class ProcessRegistry:
    """Process groups started by this run, mirrored to a file run.sh's trap reads."""

    def __init__(self, path: Path):
        self.path = path
        self.groups: dict[int, str] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write()

    def _write(self) -> None:
        self.path.write_text("".join(f"{g}\n" for g in self.groups))

    def add(self, pgid: int, name: str) -> None:
        self.groups[pgid] = name
        self._write()

    def remove(self, pgid: int) -> None:
        self.groups.pop(pgid, None)
        self._write()

    def stop_all(self) -> None:
        for pgid in list(self.groups):
            stop_group(pgid, None)
            self.remove(pgid)


def stop_group(pgid: int, proc: subprocess.Popen | None) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is None:
            time.sleep(0.05)
            continue
        if not group_pids(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        proc.wait()


# --- the servers ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    label: str
    port: int
    extra_port: int = 0

    def command(self, run_dir: Path, zones_dir: Path, zones: list[str]) -> tuple[list[str], dict]:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def warmed_up(self) -> bool:
        """Whether the server has finished the work it does after it answers (True for
        servers that do it all before they answer)."""
        return True


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError as e:
        return f"unavailable ({e})"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def zone_file(origin: str) -> str:
    return f"{origin.rstrip('.')}.zone"


class Nsd(Server):
    """NSD 4: one server process (`server-count: 1`), minimal responses, no RRL, no db."""

    def command(self, run_dir, zones_dir, zones):
        config = run_dir / "nsd.conf"
        text = f"""server:
  ip-address: 127.0.0.1@{self.port}
  server-count: {WORKERS}
  reuseport: {"yes" if WORKERS > 1 else "no"}
  username: ""
  chroot: ""
  zonesdir: "{zones_dir}"
  database: ""
  pidfile: "{run_dir}/nsd.pid"
  zonelistfile: "{run_dir}/zone.list"
  xfrdfile: "{run_dir}/xfrd.state"
  xfrdir: "{run_dir}"
  verbosity: 1
  hide-version: yes
  minimal-responses: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  refuse-any: no
  round-robin: no
remote-control:
  control-enable: no
"""
        text += "".join(f'zone:\n  name: "{z}"\n  zonefile: "{zone_file(z)}"\n' for z in zones)
        config.write_text(text)
        check = subprocess.run(["nsd-checkconf", str(config)], capture_output=True, text=True,
                               check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nsd-checkconf rejected {config}: {check.stdout}{check.stderr}")
        return ["nsd", "-d", "-c", str(config)], {}

    def version(self):
        return first_line(["nsd", "-v"])


class Knot(Server):
    """Knot DNS 3: one UDP, one TCP and one background worker; zone files read whole."""

    def command(self, run_dir, zones_dir, zones):
        config = run_dir / "knot.conf"
        storage = run_dir / "db"
        storage.mkdir(exist_ok=True)
        text = f"""server:
  rundir: "{run_dir}"
  listen: 127.0.0.1@{self.port}
  udp-workers: {WORKERS}
  tcp-workers: 1
  background-workers: 1
database:
  storage: "{storage}"
log:
  - target: stderr
    any: notice
template:
  - id: default
    storage: "{zones_dir}"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
"""
        text += "".join(f'  - domain: "{z}"\n    file: "{zone_file(z)}"\n' for z in zones)
        config.write_text(text)
        return ["knotd", "-c", str(config)], {}

    def version(self):
        return first_line(["knotd", "-V"])


class Bind(Server):
    """BIND 9: `named -g -n 1` (one worker), minimal responses, no recursion, no rndc."""

    def command(self, run_dir, zones_dir, zones):
        config = run_dir / "named.conf"
        text = f"""options {{
  directory "{run_dir}";
  pid-file "{run_dir}/named.pid";
  session-keyfile "{run_dir}/session.key";
  managed-keys-directory "{run_dir}";
  listen-on port {self.port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  allow-query {{ any; }};
  minimal-responses yes;
  notify no;
  dnssec-validation no;
  querylog no;
}};
controls {{ }};
"""
        text += "".join(
            f'zone "{z}" {{ type primary; file "{zones_dir / zone_file(z)}"; }};\n'
            for z in zones)
        config.write_text(text)
        check = subprocess.run(["named-checkconf", str(config)], capture_output=True, text=True,
                               check=False)
        if check.returncode != 0:
            raise RuntimeError(f"named-checkconf rejected {config}: {check.stdout}{check.stderr}")
        return ["named", "-g", "-n", str(WORKERS), "-c", str(config)], {}

    def version(self):
        return first_line(["named", "-v"])


class Hickory(Server):
    """Stock hickory-dns from crates.io: file-backed primary zones, `--workers 1`, quiet."""

    binary = ""

    def command(self, run_dir, zones_dir, zones):
        config = run_dir / "hickory.toml"
        text = (f'listen_addrs_ipv4 = ["127.0.0.1"]\nlisten_port = {self.port}\n'
                f'directory = "{zones_dir}"\ndrop_privileges = false\n')
        text += "".join(
            f'\n[[zones]]\nzone = "{z.rstrip(".")}"\nzone_type = "Primary"\nfile = "{zone_file(z)}"\n'
            for z in zones)
        config.write_text(text)
        # -q: hickory-server logs every query at INFO.
        return [self.binary, "-c", str(config), "--workers", str(WORKERS), "-q"], {}

    def version(self):
        return first_line([self.binary, "--version"])


class DnsPod(Server):
    """zonefleet-dns-pod in static mode (--zones-dir): one UDP worker, one tokio worker thread."""

    binary = ""

    def command(self, run_dir, zones_dir, zones):
        env = {"TOKIO_WORKER_THREADS": "1", "RUST_LOG": os.environ.get("BENCH_DNS_POD_LOG", "warn")}
        return [self.binary, "--zones-dir", str(zones_dir), "--listen", f"127.0.0.1:{self.port}",
                "--admin-address", f"127.0.0.1:{self.extra_port}",
                "--udp-workers", os.environ.get("BENCH_DNS_POD_UDP_WORKERS", str(WORKERS))], env

    def version(self):
        return first_line([self.binary, "--version"])

    def warmed_up(self):
        """The dns-pod serves a zone version as soon as it is indexed and precomputes its
        answers afterwards: done when its `zonefleet_dns_precompute_pending` gauge is 0."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.extra_port}/metrics",
                                        timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return False
        m = re.search(r"^zonefleet_dns_precompute_pending (\d+)$", text, re.M)
        return m is not None and m.group(1) == "0"


class DnsPodBefore(DnsPod):
    """A second zonefleet-dns-pod binary (BENCH_DNS_POD_BEFORE_BIN, e.g. built from an
    earlier commit), run side by side with the current one to compare a change in one run."""

    binary = ""


SERVER_TYPES = {
    "nsd": (Nsd, "NSD"),
    "knot": (Knot, "Knot DNS"),
    "bind": (Bind, "BIND 9"),
    "hickory": (Hickory, "hickory-dns (stock)"),
    "dns-pod": (DnsPod, "zonefleet-dns-pod"),
    "dns-pod-before": (DnsPodBefore, "zonefleet-dns-pod (before)"),
}


# --- dnsperf --------------------------------------------------------------------------------

DNSPERF_FIELDS = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "run_time": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "avg_latency": r"Average Latency \(s\):\s+([\d.]+)",
    "min_latency": r"Average Latency \(s\):\s+[\d.]+ \(min ([\d.]+)",
    "max_latency": r"Average Latency \(s\):\s+[\d.]+ \(min [\d.]+, max ([\d.]+)",
    "stddev_latency": r"Latency StdDev \(s\):\s+([\d.]+)",
    "request_size": r"Average packet size:\s+request (\d+)",
    "response_size": r"Average packet size:\s+request \d+, response (\d+)",
}


def parse_dnsperf(text: str) -> dict:
    out: dict = {}
    for key, pattern in DNSPERF_FIELDS.items():
        m = re.search(pattern, text)
        out[key] = float(m.group(1)) if m else None
    codes = re.search(r"Response codes:\s+(.*)", text)
    out["rcodes"] = {}
    if codes:
        for name, count in re.findall(r"([A-Z]+) (\d+)", codes.group(1)):
            out["rcodes"][name] = int(count)
    return out


def latencies_from_verbose(path: Path) -> collections.Counter:
    """The latencies of `dnsperf -v` lines `> RCODE name type latency`, counted per
    microsecond (dnsperf prints them to the microsecond)."""
    counts: collections.Counter = collections.Counter()
    with path.open(errors="replace") as f:
        for line in f:
            if line.startswith("> "):
                fields = line.split()
                try:
                    counts[round(float(fields[-1]) * 1e6)] += 1
                except (ValueError, IndexError):
                    pass
    return counts


def percentile_us(counts: collections.Counter, p: float) -> int | None:
    """The latency (µs) below which a share `p` of the counted queries were answered
    (nearest rank)."""
    total = sum(counts.values())
    if not total:
        return None
    rank = min(total - 1, int(p * total))
    seen = 0
    for micros in sorted(counts):
        seen += counts[micros]
        if seen > rank:
            return micros
    return None


def verbose_scratch(fallback: Path) -> Path:
    """Where dnsperf's per-query lines go: memory (tmpfs) when there is one, so that
    writing them back to disk does not take CPU from the server under test."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"zonefleet-bench-{os.getpid()}"
    return fallback


def run_dnsperf(port: int, query_file: Path, seconds: float, clients: int, outstanding: int,
                verbose: bool, scratch: Path, registry: "ProcessRegistry") -> tuple[dict, str]:
    """Runs dnsperf pinned to the client CPU, in a process group of its own (listed in the
    registry while it runs); returns the parsed statistics and dnsperf's summary text."""
    cmd = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
           "-d", str(query_file), "-l", str(seconds), "-c", str(clients), "-q", str(outstanding)]
    if RATE:
        cmd += ["-Q", str(RATE)]
    if CLIENT_THREADS > 1:
        cmd += ["-T", str(CLIENT_THREADS)]
    out_dir = scratch
    if verbose:
        cmd.append("-v")
        out_dir = verbose_scratch(scratch)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "dnsperf.out"
    err_path = out_dir / "dnsperf.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    registry.add(proc.pid, "dnsperf")
    try:
        proc.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise BenchError(f"dnsperf did not finish within {seconds + 60:.0f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        registry.remove(proc.pid)
    try:
        # The summary, without -v's per-query lines.
        with out_path.open(errors="replace") as f:
            summary = "".join(line for line in f if not line.startswith("> "))
        summary += err_path.read_text(errors="replace")
        if proc.returncode != 0:
            raise BenchError(f"dnsperf exited {proc.returncode}: {summary}")
        result = parse_dnsperf(summary)
        if verbose:
            counts = latencies_from_verbose(out_path)
            result["latency_counts"] = counts
            for name, share in (("p50_latency", 0.50), ("p99_latency", 0.99)):
                micros = percentile_us(counts, share)
                result[name] = micros / 1e6 if micros is not None else None
        return result, summary
    finally:
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)
        if out_dir != scratch:
            out_dir.rmdir()


# --- the run --------------------------------------------------------------------------------


@dataclass
class Settings:
    zone_set: str
    manifest: dict
    set_dir: Path
    servers: list[Server]
    mixes: list[str]
    seconds: float
    warmup: float
    rounds: int
    clients: int
    outstanding: int
    latency: bool
    ready_timeout: float
    busy_threshold: float
    strict: bool
    out_dir: Path
    run_dir: Path


@dataclass
class Outcome:
    runs: list[dict] = field(default_factory=list)
    starts: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    wrong: dict = field(default_factory=dict)  # (server, mix) -> reason
    deviations: dict = field(default_factory=dict)  # (server, mix) -> reason (AA flag only)
    # (server, mix) -> the latencies (µs) of every round, pooled
    latencies: dict = field(default_factory=dict)


class BenchError(Exception):
    pass


def start_server(server: Server, s: Settings, registry: ProcessRegistry, round_no: int) -> Running:
    for port in filter(None, (server.port, server.extra_port)):
        if not port_free(port):
            raise BenchError(f"{server.name}: port {port} on 127.0.0.1 is in use "
                             "(set BENCH_PORT_BASE to move the servers)")
    run_dir = s.run_dir / f"{server.name}-r{round_no}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    zones_dir = s.set_dir / "zones"
    cmd, extra_env = server.command(run_dir, zones_dir, s.manifest["zones"])
    log_path = s.out_dir / "logs" / f"{server.name}-r{round_no}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **extra_env)
    with log_path.open("w") as log_file:
        log_file.write(f"# {' '.join(cmd)}\n")
        log_file.flush()
        started = time.monotonic()
        proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *cmd], stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=run_dir)
    registry.add(proc.pid, server.name)
    return Running(server.name, proc, log_path, started)


def wait_ready(server: Server, running: Running, s: Settings) -> float:
    pending = list(s.manifest["ready_probes"])
    deadline = running.started + s.ready_timeout
    while pending:
        if running.proc.poll() is not None:
            raise BenchError(f"{server.name} exited ({running.proc.returncode}) before it was "
                             f"ready; see {running.log_path}:\n{tail(running.log_path)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} did not answer {pending[0]} within "
                             f"{s.ready_timeout:.0f} s; see {running.log_path}:\n"
                             f"{tail(running.log_path)}")
        if probe_ok(server.port, pending[0]):
            pending.pop(0)
            continue
        time.sleep(0.01)
    return time.monotonic() - running.started


def wait_warmed_up(server: Server, running: Running, s: Settings) -> float:
    """Waits until the server has finished its work after the first answers (the dns-pod's
    precomputed answers); returns the seconds from spawn."""
    deadline = running.started + s.ready_timeout
    while not server.warmed_up():
        if running.proc.poll() is not None:
            raise BenchError(f"{server.name} exited ({running.proc.returncode}) while warming "
                             f"up; see {running.log_path}:\n{tail(running.log_path)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} did not finish warming up within "
                             f"{s.ready_timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - running.started


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def measure_server(server: Server, s: Settings, registry: ProcessRegistry, round_no: int,
                   outcome: Outcome) -> None:
    log(f"round {round_no}: {server.name}: starting on 127.0.0.1:{server.port}")
    running = start_server(server, s, registry, round_no)
    pgid = running.proc.pid
    try:
        cold = wait_ready(server, running, s)
        mem = memory(pgid)
        warm = wait_warmed_up(server, running, s)
        pinning = affinity_problems(pgid)
        if pinning:
            raise BenchError(f"{server.name} is not pinned to CPU {SERVER_CPU}: {pinning[:3]}")
        log(f"round {round_no}: {server.name}: ready after {cold:.3f} s, warmed up after "
            f"{warm:.3f} s, "
            f"peak RSS {mem['hwm_kib'] / 1024:.1f} MiB, Pss {mem['pss_kib'] / 1024:.1f} MiB, "
            f"{mem['processes']} process(es)")
        start_row = {"round": round_no, "server": server.name, "cold_start_s": round(cold, 4),
                     "warmed_up_s": round(warm, 4),
                     "peak_rss_mib": round(mem["hwm_kib"] / 1024, 1),
                     "rss_mib": round(mem["rss_kib"] / 1024, 1),
                     "pss_mib": round(mem["pss_kib"] / 1024, 1), "processes": mem["processes"]}

        measurable = []
        for mix in s.mixes:
            verdict, why = check_answer(server.port, s.manifest["mixes"][mix]["check"])
            if verdict == "ok":
                log(f"round {round_no}: {server.name}: check {mix}: {why}")
                measurable.append(mix)
            elif verdict == "deviation":
                reason = why.splitlines()[0].split(": ", 1)[1]
                loud(f"{server.name} answers the {mix} check with a wrong AA flag; {mix} is "
                     f"measured, and the deviation reported:\n{why}")
                outcome.deviations[(server.name, mix)] = reason
                measurable.append(mix)
            else:
                reason = why.splitlines()[0]
                loud(f"{server.name} answers the {mix} check wrongly, so {mix} is not measured "
                     f"for it:\n{why}")
                outcome.wrong[(server.name, mix)] = reason
                outcome.failures.append(f"{server.name}/{mix}: wrong answer: {reason}")
                if s.strict:
                    raise BenchError(f"BENCH_STRICT=1: {server.name}/{mix} answered wrongly")

        if s.warmup > 0 and measurable:
            run_dnsperf(server.port, s.set_dir / s.manifest["mixes"][measurable[0]]["file"],
                        s.warmup, s.clients, s.outstanding, False, s.run_dir, registry)

        for mix in measurable:
            query_file = s.set_dir / s.manifest["mixes"][mix]["file"]
            load_before = Path("/proc/loadavg").read_text().split()[0]
            cpu0 = (time.monotonic(), group_cpu_seconds(pgid), children_cpu_seconds(),
                    cpu_busy_seconds(tuple(sorted(cpu_set(SERVER_CPU) | cpu_set(CLIENT_CPU)))))
            result, summary = run_dnsperf(server.port, query_file, s.seconds, s.clients,
                                          s.outstanding, s.latency, s.run_dir, registry)
            cpu1 = (time.monotonic(), group_cpu_seconds(pgid), children_cpu_seconds(),
                    cpu_busy_seconds(tuple(sorted(cpu_set(SERVER_CPU) | cpu_set(CLIENT_CPU)))))
            wall = cpu1[0] - cpu0[0]
            server_cpu = 100 * (cpu1[1] - cpu0[1]) / wall
            client_cpu = 100 * (cpu1[2] - cpu0[2]) / wall
            other_cpu = max(0.0, 100 * (cpu1[3] - cpu0[3]) / wall - server_cpu - client_cpu)
            (s.out_dir / "logs" / f"dnsperf-{server.name}-{mix}-r{round_no}.txt").write_text(summary)
            expected = s.manifest["mixes"][mix]["check"]["rcode"]
            answered = sum(result["rcodes"].values())
            expected_share = result["rcodes"].get(expected, 0) / answered if answered else 0.0
            lost_pct = 100.0 * (result["lost"] or 0) / result["sent"] if result["sent"] else 100.0
            flags = []
            if lost_pct > 1.0:
                flags.append(f"lost {lost_pct:.1f}%")
            if expected_share < 0.99:
                flags.append(f"only {100 * expected_share:.1f}% {expected}")
            problems = list(flags)
            if other_cpu > s.busy_threshold:
                flags.append(f"busy machine: others used {other_cpu:.0f}% of a core")
            row = {
                "round": round_no, "server": server.name, "mix": mix,
                "qps": result["qps"], "sent": result["sent"], "completed": result["completed"],
                "lost": result["lost"], "lost_pct": round(lost_pct, 3),
                "avg_latency_ms": ms(result["avg_latency"]),
                "p50_latency_ms": ms(result.get("p50_latency")),
                "p99_latency_ms": ms(result.get("p99_latency")),
                "max_latency_ms": ms(result["max_latency"]),
                "request_bytes": result["request_size"], "response_bytes": result["response_size"],
                "rcodes": " ".join(f"{k}={v}" for k, v in sorted(result["rcodes"].items())),
                "server_cpu_pct": round(server_cpu, 1), "dnsperf_cpu_pct": round(client_cpu, 1),
                "qps_per_server_core": (round(result["qps"] * 100 / server_cpu)
                                        if result["qps"] and server_cpu > 0 else None),
                "other_cpu_pct": round(other_cpu, 1),
                "loadavg_1m": float(load_before),
                "flags": "; ".join(flags),
            }
            outcome.runs.append(row)
            if "latency_counts" in result:
                outcome.latencies.setdefault((server.name, mix), collections.Counter()).update(
                    result["latency_counts"])
            log(f"round {round_no}: {server.name}: {mix}: {result['qps'] or 0:,.0f} qps, "
                f"avg {row['avg_latency_ms']} ms, p99 {row['p99_latency_ms']} ms, "
                f"lost {lost_pct:.2f}%, CPU server {server_cpu:.0f}% dnsperf {client_cpu:.0f}% "
                f"others {other_cpu:.0f}%" + (f"  FLAGGED: {row['flags']}" if flags else ""))
            if problems:
                outcome.failures.append(f"{server.name}/{mix} round {round_no}: "
                                        + "; ".join(problems))
            elif flags:
                outcome.warnings.append(f"{server.name}/{mix} round {round_no}: {row['flags']}")

        after = memory(pgid)
        start_row["peak_rss_after_mib"] = round(after["hwm_kib"] / 1024, 1)
        start_row["rss_after_mib"] = round(after["rss_kib"] / 1024, 1)
        start_row["pss_after_mib"] = round(after["pss_kib"] / 1024, 1)
        outcome.starts.append(start_row)
    finally:
        stop_group(pgid, running.proc)
        registry.remove(pgid)
    if running.proc.returncode not in (0, -signal.SIGTERM, 143, None):
        log(f"round {round_no}: {server.name}: exited {running.proc.returncode} after SIGTERM")


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary_flags(runs: list[dict], deviation: str | None) -> str:
    """The flags of a server's runs of one mix, each with the number of runs it applies to."""
    counts: dict[str, int] = {}
    for run in runs:
        for flag in filter(None, run["flags"].split("; ")):
            key = "busy machine" if flag.startswith("busy machine") else flag
            counts[key] = counts.get(key, 0) + 1
    out = [deviation] if deviation else []
    out += [f"{key} ({n}/{len(runs)} runs)" for key, n in counts.items()]
    return "; ".join(out)


def summarize(s: Settings, outcome: Outcome) -> list[dict]:
    rows = []
    nsd_qps, nsd_per_core = {}, {}
    for mix in s.mixes:
        nsd_runs = [r for r in outcome.runs if r["server"] == "nsd" and r["mix"] == mix]
        nsd_qps[mix] = median(r["qps"] for r in nsd_runs)
        nsd_per_core[mix] = median(r.get("qps_per_server_core") for r in nsd_runs)
    for server in s.servers:
        starts = [r for r in outcome.starts if r["server"] == server.name]
        for mix in s.mixes:
            runs = [r for r in outcome.runs if r["server"] == server.name and r["mix"] == mix]
            qps = median(r["qps"] for r in runs)
            base = nsd_qps.get(mix)
            per_core = median(r.get("qps_per_server_core") for r in runs)
            per_core_base = nsd_per_core.get(mix)
            rows.append({
                "server": server.name, "label": server.label, "mix": mix,
                "rounds": len(runs),
                "qps_median": round(qps) if qps is not None else None,
                "qps_min": round(min(r["qps"] for r in runs)) if runs else None,
                "qps_max": round(max(r["qps"] for r in runs)) if runs else None,
                "ratio_to_nsd": round(qps / base, 3) if qps is not None and base else None,
                "qps_per_server_core": round(per_core) if per_core is not None else None,
                "per_core_ratio_to_nsd": (round(per_core / per_core_base, 3)
                                          if per_core is not None and per_core_base else None),
                "avg_latency_ms": median(r["avg_latency_ms"] for r in runs),
                "p50_latency_ms": median(r["p50_latency_ms"] for r in runs),
                "p99_latency_ms": median(r["p99_latency_ms"] for r in runs),
                "p50_pooled_ms": pooled_ms(outcome, server.name, mix, 0.50),
                "p99_pooled_ms": pooled_ms(outcome, server.name, mix, 0.99),
                "p999_pooled_ms": pooled_ms(outcome, server.name, mix, 0.999),
                "lost_pct_max": max((r["lost_pct"] for r in runs), default=None),
                "response_bytes": median(r["response_bytes"] for r in runs),
                "server_cpu_pct": median(r["server_cpu_pct"] for r in runs),
                "dnsperf_cpu_pct": median(r["dnsperf_cpu_pct"] for r in runs),
                "other_cpu_pct": median(r["other_cpu_pct"] for r in runs),
                "cold_start_s": median(r["cold_start_s"] for r in starts),
                "peak_rss_mib": median(r["peak_rss_mib"] for r in starts),
                "pss_mib": median(r["pss_mib"] for r in starts),
                "peak_rss_run_mib": median(r.get("peak_rss_after_mib") for r in starts),
                "pss_after_mib": median(r.get("pss_after_mib") for r in starts),
                "flags": summary_flags(runs, outcome.deviations.get((server.name, mix))),
                "wrong": outcome.wrong.get((server.name, mix), ""),
            })
    return rows


def pooled_ms(outcome: Outcome, server: str, mix: str, share: float) -> float | None:
    """A latency percentile (ms) over the queries of all rounds of a server and mix."""
    micros = percentile_us(outcome.latencies.get((server, mix), collections.Counter()), share)
    return micros / 1000 if micros is not None else None


def fmt(value, spec: str = "", none: str = "–") -> str:
    if value is None:
        return none
    return format(value, spec)


def markdown(s: Settings, rows: list[dict], outcome: Outcome, meta: dict) -> str:
    out = [
        f"### {s.zone_set} zone set, {meta['names']:,} names in {len(s.manifest['zones']):,} "
        f"zone(s): {s.rounds} round(s) × {s.seconds:g} s per mix",
        "",
        f"dnsperf `-c {s.clients} -q {s.outstanding}"
        + (f" -Q {RATE}" if RATE else "")
        + (f" -T {CLIENT_THREADS}" if CLIENT_THREADS > 1 else "")
        + f"` pinned to CPU {CLIENT_CPU}; each server "
        f"pinned to CPU {SERVER_CPU} with {WORKERS} worker(s). Medians over rounds; ratio = "
        "median QPS ÷ NSD's median QPS for the same mix; QPS per server core = QPS ÷ the "
        "share of a core the server used (what it would answer with its core full, when "
        "dnsperf is the limit). Latency is "
        + (f"at an offered {RATE:,} queries/s " if RATE else "under full load ")
        + ("(p50/p99 from `dnsperf -v`: the median of the rounds' own, and over the queries "
           "of all rounds pooled)." if s.latency else "(dnsperf's average)."),
        "",
        "| server | mix | QPS (median) | min–max | × NSD | QPS per server core | × NSD | "
        "avg ms | p50 ms | p99 ms | p99 ms, pooled | p99.9 ms, pooled | lost % (max) | "
        "resp. bytes | CPU % server / dnsperf / others | flags |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["wrong"]:
            out.append(f"| {r['label']} | {r['mix']} | WRONG ANSWER | | | | | | | | | | | | | "
                       f"{r['wrong']} |")
            continue
        out.append(
            f"| {r['label']} | {r['mix']} | {fmt(r['qps_median'], ',')} | "
            f"{fmt(r['qps_min'], ',')}–{fmt(r['qps_max'], ',')} | "
            f"{fmt(r['ratio_to_nsd'], '.2f')} | {fmt(r['qps_per_server_core'], ',')} | "
            f"{fmt(r['per_core_ratio_to_nsd'], '.2f')} | {fmt(r['avg_latency_ms'], '.3f')} | "
            f"{fmt(r['p50_latency_ms'], '.3f')} | {fmt(r['p99_latency_ms'], '.3f')} | "
            f"{fmt(r['p99_pooled_ms'], '.3f')} | {fmt(r['p999_pooled_ms'], '.3f')} | "
            f"{fmt(r['lost_pct_max'], '.2f')} | {fmt(r['response_bytes'], '.0f')} | "
            f"{fmt(r['server_cpu_pct'], '.0f')} / {fmt(r['dnsperf_cpu_pct'], '.0f')} / "
            f"{fmt(r['other_cpu_pct'], '.0f')} | {r['flags']} |")
    out += ["", "| server | version | cold start (s, median) | warmed up (s) | "
            "peak RSS after load (MiB) | Pss after load (MiB) | peak RSS, whole run (MiB) | "
            "Pss after the runs (MiB) | bytes per name |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for server in s.servers:
        starts = [r for r in outcome.starts if r["server"] == server.name]
        pss_after = median(r.get("pss_after_mib") for r in starts)
        per_name = pss_after * 1024 * 1024 / meta["names"] if pss_after and meta["names"] else None
        out.append(
            f"| {server.label} | {meta['versions'].get(server.name, '')} | "
            f"{fmt(median(r['cold_start_s'] for r in starts), '.3f')} | "
            f"{fmt(median(r.get('warmed_up_s') for r in starts), '.3f')} | "
            f"{fmt(median(r['peak_rss_mib'] for r in starts), '.1f')} | "
            f"{fmt(median(r['pss_mib'] for r in starts), '.1f')} | "
            f"{fmt(median(r.get('peak_rss_after_mib') for r in starts), '.1f')} | "
            f"{fmt(pss_after, '.1f')} | {fmt(per_name, ',.0f')} |")
    if outcome.deviations:
        out += ["", "**Deviations (measured anyway):**", ""] + [
            f"- {srv}/{mix}: {why}" for (srv, mix), why in sorted(outcome.deviations.items())]
    if outcome.warnings:
        out += ["", "**Warnings** (other processes took CPU time during these runs; their "
                "numbers are less reliable):", ""] + [f"- {w}" for w in outcome.warnings]
    if outcome.failures:
        out += ["", "**Problems:**", ""] + [f"- {f}" for f in outcome.failures]
    return "\n".join(out) + "\n"


def plot(s: Settings, rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not importable by this python: no chart (apt-get install "
            "python3-matplotlib and run with /usr/bin/python3)")
        return False
    mixes = s.mixes
    servers = s.servers
    width = 0.8 / max(1, len(servers))
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(mixes)), 5.5))
    for i, server in enumerate(servers):
        values, notes = [], []
        for mix in mixes:
            row = next(r for r in rows if r["server"] == server.name and r["mix"] == mix)
            values.append(row["qps_median"] or 0)
            notes.append("wrong answer" if row["wrong"] else "not measured")
        xs = [m + (i - (len(servers) - 1) / 2) * width for m in range(len(mixes))]
        bars = ax.bar(xs, values, width, label=server.label)
        floor = min((v for r in rows if (v := r["qps_median"])), default=1)
        for bar, value, note in zip(bars, values, notes):
            x = bar.get_x() + bar.get_width() / 2
            if not value:
                ax.annotate(note, (x, floor), ha="center", va="bottom", fontsize=7,
                            rotation=90, color="red")
                continue
            if value >= 10_000:
                text = f"{value / 1000:.0f}k"
            elif value >= 1_000:
                text = f"{value / 1000:.1f}k"
            else:
                text = f"{value:.0f}"
            ax.annotate(text, (x, value), ha="center", va="bottom", fontsize=7, rotation=90,
                        xytext=(0, 2), textcoords="offset points")
    ax.set_yscale("log")
    top = max((r["qps_median"] or 0 for r in rows), default=0)
    if top:
        ax.set_ylim(top=top * 3)  # room for the labels above the tallest bar
    ax.set_xticks(range(len(mixes)))
    ax.set_xticklabels(mixes)
    ax.set_ylabel("queries per second (median, log scale)")
    ax.set_title(f"{s.zone_set} zone set: one server core, dnsperf on the other "
                 f"({s.rounds} round(s) × {s.seconds:g} s)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08),
              ncol=min(5, len(servers)))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_results(s: Settings, outcome: Outcome, meta: dict) -> str:
    rows = summarize(s, outcome)
    table = markdown(s, rows, outcome, meta)
    s.out_dir.mkdir(parents=True, exist_ok=True)
    if outcome.runs:
        with (s.out_dir / "runs.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(outcome.runs[0]))
            writer.writeheader()
            writer.writerows(outcome.runs)
    if outcome.starts:
        fields = list(dict.fromkeys(k for r in outcome.starts for k in r))
        with (s.out_dir / "starts.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(outcome.starts)
    if outcome.latencies:
        # Every query's latency, counted per microsecond: runs can be pooled afterwards.
        with (s.out_dir / "latencies.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["server", "mix", "latency_us", "queries"])
            for (server, mix), counts in sorted(outcome.latencies.items()):
                writer.writerows([server, mix, micros, counts[micros]] for micros in sorted(counts))
    with (s.out_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (s.out_dir / "summary.json").write_text(json.dumps(
        {"meta": meta, "summary": rows, "runs": outcome.runs, "starts": outcome.starts,
         "failures": outcome.failures, "warnings": outcome.warnings,
         "deviations": [{"server": k[0], "mix": k[1], "why": v}
                        for k, v in sorted(outcome.deviations.items())]}, indent=1) + "\n")
    (s.out_dir / "summary.md").write_text(table)
    if plot(s, rows, s.out_dir / "qps.png"):
        log(f"chart: {s.out_dir / 'qps.png'}")
    return table


def git_describe() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "dns-pod", "wire", "Cargo.lock"],
                               capture_output=True, text=True, check=False).stdout.strip()
        return rev + ("+dirty (dns-pod/wire)" if dirty else "")
    except OSError:
        return "unknown"


def settings_from_env(zone_set: str, out_root: Path, stamp: str) -> Settings:
    work = Path(os.environ.get("BENCH_WORK", HERE / "work"))
    set_dir = work / zone_set
    manifest = json.loads((set_dir / "manifest.json").read_text())
    base = env_int("BENCH_PORT_BASE", 15300)
    Hickory.binary = os.environ["BENCH_HICKORY_BIN"]
    DnsPod.binary = os.environ["BENCH_DNS_POD_BIN"]
    DnsPodBefore.binary = os.environ.get("BENCH_DNS_POD_BEFORE_BIN", "")
    ports = {"nsd": 1, "knot": 2, "bind": 3, "hickory": 4, "dns-pod": 5, "dns-pod-before": 6}
    servers = []
    for name in env_list("BENCH_SERVERS", "nsd knot bind hickory dns-pod"):
        if name not in SERVER_TYPES:
            raise BenchError(f"unknown server {name!r} in BENCH_SERVERS "
                             f"(known: {' '.join(SERVER_TYPES)})")
        cls, label = SERVER_TYPES[name]
        if cls is DnsPodBefore and not DnsPodBefore.binary:
            raise BenchError("dns-pod-before needs BENCH_DNS_POD_BEFORE_BIN")
        servers.append(cls(name, label, base + ports[name],
                           base + 10 + ports[name] if issubclass(cls, DnsPod) else 0))
    wanted = env_list("BENCH_MIXES", "all")
    available = list(manifest["mixes"])
    if wanted == ["all"]:
        mixes = available
    else:
        unknown = [m for m in wanted if m not in available]
        if unknown:
            raise BenchError(f"the {zone_set} set has no mix {unknown} (it has {available})")
        mixes = wanted
    return Settings(
        zone_set=zone_set, manifest=manifest, set_dir=set_dir, servers=servers, mixes=mixes,
        seconds=env_float("BENCH_SECONDS", 10), warmup=env_float("BENCH_WARMUP", 1),
        rounds=env_int("BENCH_ROUNDS", 3), clients=env_int("BENCH_CLIENTS", 4),
        outstanding=env_int("BENCH_OUTSTANDING", 100),
        latency=os.environ.get("BENCH_LATENCY", "1") != "0",
        ready_timeout=env_float("BENCH_READY_TIMEOUT", 600),
        busy_threshold=env_float("BENCH_BUSY_THRESHOLD", 20),
        strict=os.environ.get("BENCH_STRICT", "0") == "1",
        out_dir=out_root / f"{stamp}-{zone_set}",
        run_dir=work / "run" / zone_set,
    )


def run_set(s: Settings, registry: ProcessRegistry) -> tuple[str, bool]:
    meta = {
        "zone_set": s.zone_set, "names": s.manifest["names"], "zones": len(s.manifest["zones"]),
        "mixes": s.mixes, "rounds": s.rounds, "seconds": s.seconds, "warmup": s.warmup,
        "clients": s.clients, "outstanding": s.outstanding, "latency_percentiles": s.latency,
        "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU, "workers": WORKERS, "rate": RATE,
        "ports": {srv.name: srv.port for srv in s.servers},
        "versions": {srv.name: srv.version() for srv in s.servers},
        "dnsperf": first_line(["sh", "-c", "dnsperf -h 2>&1 | grep -i '^version'"]),
        "kernel": os.uname().release, "repo": git_describe(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    log(f"zone set {s.zone_set}: servers {[x.name for x in s.servers]}, mixes {s.mixes}, "
        f"{s.rounds} round(s) × {s.seconds:g} s; results in {s.out_dir}")
    outcome = Outcome()
    for round_no in range(1, s.rounds + 1):
        shift = (round_no - 1) % len(s.servers)
        order = s.servers[shift:] + s.servers[:shift]
        for server in order:
            try:
                measure_server(server, s, registry, round_no, outcome)
            except BenchError as e:
                loud(str(e))
                outcome.failures.append(f"{server.name} round {round_no}: {str(e).splitlines()[0]}")
                if s.strict:
                    raise
    shutil.rmtree(s.run_dir, ignore_errors=True)
    table = write_results(s, outcome, meta)
    return table, not outcome.failures


def main() -> int:
    out_root = Path(os.environ.get("BENCH_RESULTS", HERE / "results"))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(os.environ.get("BENCH_WORK", HERE / "work"))
    registry = ProcessRegistry(work / "run" / "pgids")

    def on_signal(signum, _frame):
        registry.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    all_ok = True
    tables = []
    try:
        for zone_set in sys.argv[1:]:
            s = settings_from_env(zone_set, out_root, stamp)
            table, ok = run_set(s, registry)
            all_ok &= ok
            tables.append(table)
            print(table, flush=True)
            latest = out_root / f"latest-{zone_set}"
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(s.out_dir.name)
            log(f"results: {s.out_dir}")
    except BenchError as e:
        loud(str(e))
        return 2
    finally:
        registry.stop_all()
    if not all_ok:
        loud("some runs failed, answered wrongly or were flagged: see 'Problems' above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
