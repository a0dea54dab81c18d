#!/usr/bin/env python3
"""Reads fluster's JSON summaries and decides the run: every vector must pass, except the ones
tests/fluster/known-failures.tsv lists for that decoder (each with its reason).

    check.py KNOWN_FAILURES SUMMARY.json...

Prints the score of each decoder on each suite (passed / run, time), then every failure: a
listed one as "known" with its reason, any other as "UNEXPECTED". A listed failure that passes
is reported too ("now passes: remove it from the list"), so the list stays true. Exits 1 on an
unexpected failure or a listed vector that passed, 0 otherwise.

known-failures.tsv: DECODER<TAB>SUITE<TAB>VECTOR<TAB>REASON per line; `#` starts a comment.
DECODER may be a fluster decoder name or `*` (every decoder of the suite).
"""

import json
import sys


def known(path: str) -> dict[tuple[str, str, str], str]:
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 4:
                raise SystemExit(f"{path}: not DECODER<TAB>SUITE<TAB>VECTOR<TAB>REASON: {line!r}")
            entries[(fields[0], fields[1], fields[2])] = fields[3]
    return entries


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: check.py KNOWN_FAILURES SUMMARY.json...", file=sys.stderr)
        return 2
    listed = known(sys.argv[1])
    unexpected = stale = 0
    for summary in sys.argv[2:]:
        with open(summary, encoding="utf-8") as f:
            data = json.load(f)
        for suite, suite_data in data["test_suites"].items():
            for decoder, d in suite_data["decoders"].items():
                vectors = d.get("vectors", {})
                ran = {v: r for v, r in vectors.items() if r["result"] != "Not run"}
                passed = sum(1 for r in ran.values() if r["result"] == "Success")
                print(f"{decoder} {suite}: {passed}/{len(ran)} passed ({d.get('total_time', 0):.0f} s)")
                for vector, r in sorted(ran.items()):
                    reason = listed.get((decoder, suite, vector)) or listed.get(("*", suite, vector))
                    if r["result"] == "Success":
                        if reason:
                            stale += 1
                            print(f"  now passes: {vector} (listed: {reason}): remove it from the list")
                    elif reason:
                        print(f"  known {r['result'].lower()}: {vector}: {reason}")
                    else:
                        unexpected += 1
                        print(f"  UNEXPECTED {r['result'].lower()}: {vector}")
    if unexpected or stale:
        print(f"fluster: {unexpected} unexpected failures, {stale} listed failures that pass")
        return 1
    print("fluster: no unexpected results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
