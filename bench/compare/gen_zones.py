#!/usr/bin/env python3
"""Generates the benchmark's zone files and dnsperf query files, deterministically.

Zone sets (each in WORK/<set>/zones/<origin>.zone, the naming zonefleet-dns-pod's
--zones-dir expects, and used as is by every other server):

  100k     one zone `bench100k.test.` with 100,000 names
  1m       one zone `bench1m.test.` with 1,000,000 names, the same shape
  10k      10,000 small zones `zone1.test.` ... `zone10000.test.`, a few records each

The one-zone sets hold, besides SOA and NS (with in-zone addresses):
  - 90 % of the names: `h<i>` with one A record
  - 10 % of the names: `c<i>` CNAME to an existing `h<j>` (in-zone target)
  - a wildcard `*.wild` A
  - a delegated child `sub` with two NS and their glue addresses (referrals)

Query mixes (WORK/<set>/queries/<mix>.txt, dnsperf's "name type" lines, QUERIES lines each,
names drawn at random over the whole zone so caches see many names):
  positive   existing A names                          -> NOERROR, AA, an A answer
  nxdomain   random names that do not exist in the zone -> NXDOMAIN, AA
  wildcard   random names under `wild`                  -> NOERROR, AA, a synthesized A
  referral   random names under the delegated `sub`     -> NOERROR, no AA, NS in authority
  cname      the CNAME names, asked for A               -> NOERROR, AA, CNAME + A
The 10k set has positive (`www.zone<k>.test. A`), nxdomain and cname (`ftp` CNAME `www`).

WORK/<set>/manifest.json lists the zones, the mixes, one check query per mix with its
expected answer (run.sh digs each before measuring), and the readiness probes.

Usage: gen_zones.py [--work DIR] [--queries N] [--seed S] SET...
Re-running with the same parameters does nothing (the manifest records them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

GENERATOR_VERSION = 1
HERE = Path(__file__).resolve().parent

SOA_TTL = 3600
SETS = {
    "100k": {"kind": "big", "origin": "bench100k.test.", "names": 100_000},
    "1m": {"kind": "big", "origin": "bench1m.test.", "names": 1_000_000},
    "10k": {"kind": "many", "zones": 10_000},
}


def addr(i: int) -> str:
    """A distinct address in 10.0.0.0/8 for index i."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def big_zone(origin: str, names: int, rng: random.Random) -> tuple[str, int, int]:
    """The text of a one-zone set's zone; returns (text, A names, CNAME names)."""
    n_cname = names // 10
    n_a = names - n_cname
    lines = [
        f"$ORIGIN {origin}",
        f"$TTL {SOA_TTL}",
        "@\tSOA\tns1 hostmaster 1 3600 600 1209600 300",
        "@\tNS\tns1",
        "@\tNS\tns2",
        "ns1\tA\t192.0.2.1",
        "ns2\tA\t192.0.2.2",
        "*.wild\tA\t192.0.2.100",
        "sub\tNS\tns1.sub",
        "sub\tNS\tns2.sub",
        "ns1.sub\tA\t192.0.2.201",
        "ns2.sub\tA\t192.0.2.202",
    ]
    lines.extend(f"h{i}\tA\t{addr(i)}" for i in range(n_a))
    lines.extend(f"c{i}\tCNAME\th{rng.randrange(n_a)}" for i in range(n_cname))
    return "\n".join(lines) + "\n", n_a, n_cname


def small_zone(k: int) -> str:
    origin = f"zone{k}.test."
    return (
        f"$ORIGIN {origin}\n"
        f"$TTL {SOA_TTL}\n"
        "@\tSOA\tns1 hostmaster 1 3600 600 1209600 300\n"
        "@\tNS\tns1\n"
        "@\tNS\tns2\n"
        "@\tMX\t10 mail\n"
        '@\tTXT\t"v=spf1 mx -all"\n'
        "ns1\tA\t192.0.2.1\n"
        "ns2\tA\t192.0.2.2\n"
        f"www\tA\t{addr(k)}\n"
        f"mail\tA\t{addr(k + 20000)}\n"
        "ftp\tCNAME\twww\n"
    )


def nx_label(rng: random.Random) -> str:
    # `nx-` + 12 hex digits: never an owner name of the generated zones.
    return f"nx-{rng.getrandbits(48):012x}"


def write_lines(path: Path, lines) -> None:
    with path.open("w") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


def generate_big(out: Path, spec: dict, queries: int, seed: int) -> dict:
    rng = random.Random(seed)
    origin = spec["origin"]
    zones = out / "zones"
    qdir = out / "queries"
    zones.mkdir(parents=True)
    qdir.mkdir(parents=True)
    text, n_a, n_cname = big_zone(origin, spec["names"], rng)
    (zones / f"{origin[:-1]}.zone").write_text(text)

    qrng = random.Random(seed + 1)
    mixes = {
        "positive": (f"h{qrng.randrange(n_a)}.{origin} A" for _ in range(queries)),
        "nxdomain": (f"{nx_label(qrng)}.{origin} A" for _ in range(queries)),
        "wildcard": (f"w{qrng.getrandbits(32):08x}.wild.{origin} A" for _ in range(queries)),
        "referral": (f"q{qrng.getrandbits(32):08x}.sub.{origin} A" for _ in range(queries)),
        "cname": (f"c{qrng.randrange(n_cname)}.{origin} A" for _ in range(queries)),
    }
    for mix, lines in mixes.items():
        write_lines(qdir / f"{mix}.txt", lines)

    checks = {
        "positive": {"qname": f"h1.{origin}", "qtype": "A", "rcode": "NOERROR", "aa": True,
                     "answer": ["A"]},
        "nxdomain": {"qname": f"nx-000000000000.{origin}", "qtype": "A", "rcode": "NXDOMAIN",
                     "aa": True, "answer": []},
        "wildcard": {"qname": f"check.wild.{origin}", "qtype": "A", "rcode": "NOERROR",
                     "aa": True, "answer": ["A"]},
        "referral": {"qname": f"check.sub.{origin}", "qtype": "A", "rcode": "NOERROR",
                     "aa": False, "answer": [], "authority": ["NS"]},
        "cname": {"qname": f"c1.{origin}", "qtype": "A", "rcode": "NOERROR", "aa": True,
                  "answer": ["CNAME", "A"]},
    }
    return {
        "zones": [origin],
        "names": spec["names"],
        "a_names": n_a,
        "cname_names": n_cname,
        "mixes": {m: {"file": f"queries/{m}.txt", "check": checks[m]} for m in mixes},
        # Ready when the zone answers its SOA and a name from the end of the file.
        "ready_probes": [
            {"qname": origin, "qtype": "SOA", "rcode": "NOERROR"},
            {"qname": f"c{n_cname - 1}.{origin}", "qtype": "A", "rcode": "NOERROR"},
        ],
    }


def generate_many(out: Path, spec: dict, queries: int, seed: int) -> dict:
    count = spec["zones"]
    zones = out / "zones"
    qdir = out / "queries"
    zones.mkdir(parents=True)
    qdir.mkdir(parents=True)
    for k in range(1, count + 1):
        (zones / f"zone{k}.test.zone").write_text(small_zone(k))

    qrng = random.Random(seed + 1)

    def zone() -> int:
        return qrng.randrange(1, count + 1)

    mixes = {
        "positive": (f"www.zone{zone()}.test. A" for _ in range(queries)),
        "nxdomain": (f"{nx_label(qrng)}.zone{zone()}.test. A" for _ in range(queries)),
        "cname": (f"ftp.zone{zone()}.test. A" for _ in range(queries)),
    }
    for mix, lines in mixes.items():
        write_lines(qdir / f"{mix}.txt", lines)
    last = f"zone{count}.test."
    checks = {
        "positive": {"qname": f"www.{last}", "qtype": "A", "rcode": "NOERROR", "aa": True,
                     "answer": ["A"]},
        "nxdomain": {"qname": f"nx-000000000000.{last}", "qtype": "A", "rcode": "NXDOMAIN",
                     "aa": True, "answer": []},
        "cname": {"qname": f"ftp.{last}", "qtype": "A", "rcode": "NOERROR", "aa": True,
                  "answer": ["CNAME", "A"]},
    }
    # Ready when a spread of zones (first, last, every 1000th) answers its SOA.
    sample = sorted({1, count, *range(1000, count + 1, 1000)})
    return {
        "zones": [f"zone{k}.test." for k in range(1, count + 1)],
        "names": count * 6,
        "mixes": {m: {"file": f"queries/{m}.txt", "check": checks[m]} for m in mixes},
        "ready_probes": [{"qname": f"zone{k}.test.", "qtype": "SOA", "rcode": "NOERROR"}
                         for k in sample],
    }


def generate(work: Path, name: str, queries: int, seed: int) -> Path:
    spec = SETS[name]
    out = work / name
    params = {"generator": GENERATOR_VERSION, "set": name, "spec": spec, "queries": queries,
              "seed": seed}
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        try:
            if json.loads(manifest_path.read_text()).get("params") == params:
                print(f"gen_zones: {name}: up to date in {out}", file=sys.stderr)
                return manifest_path
        except json.JSONDecodeError:
            pass
    print(f"gen_zones: {name}: generating into {out}", file=sys.stderr)
    tmp = work / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if spec["kind"] == "big":
        manifest = generate_big(tmp, spec, queries, seed)
    else:
        manifest = generate_many(tmp, spec, queries, seed)
    manifest["params"] = params
    manifest["set"] = name
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", choices=sorted(SETS))
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--queries", type=int, default=100_000,
                        help="lines per query file (default 100000)")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        print(generate(args.work, name, args.queries, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
