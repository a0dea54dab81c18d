#!/usr/bin/env python3
"""Builds fluster test suites from the project's conformance streams, for fluster to run offline.

    suites.py VECTORS OUT

VECTORS is the shared vector store (its MANIFEST.tsv says how each stream was made, and
reference-suites/fluster-*/ holds fluster's own definitions of the upstream sets). OUT gets
`test_suites/<codec>/<SUITE>.json` (fluster's JSON suite format) and
`resources/<SUITE>/<vector>/<file>`, symbolic links to the streams: pass them to fluster as
`-tsd OUT/test_suites -r OUT/resources`.

- The upstream suites keep their names and their reference MD5s (`result`: the MD5 of the whole
  decoded output) and are cut down to the vectors the store has. A vector is kept only when the
  store's own whole-output MD5 of that stream (`.md5` from the AV1 test data, `.jm.md5` from the
  JM decoder) equals the suite's, so a stream that is not the upstream one is never run against
  the upstream result.
- VP9: the store has none of fluster's VP9-TEST-VECTORS files, so DAEDALUS-VP9 is made from its
  VP9 streams and their `.whole.md5` (libvpx's output, all shown frames).

Prints one line per suite: how many vectors it has and why others were left out. Exits non-zero
when no suite could be made (the store is missing or empty).
"""

import json
import os
import sys
from pathlib import Path


def first_md5(path: Path) -> str | None:
    """The first whitespace-separated field of a one-line MD5 file, lower case."""
    try:
        text = path.read_text().split()
    except OSError:
        return None
    return text[0].lower() if text else None


def index(vectors: Path) -> dict[str, list[Path]]:
    """Stream file name -> paths, over MANIFEST.tsv's streams."""
    by_name: dict[str, list[Path]] = {}
    with open(vectors / "MANIFEST.tsv", encoding="utf-8") as manifest:
        for line in manifest:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or fields[0] == "codec":
                continue
            path = vectors / fields[1]
            if path.is_file():
                by_name.setdefault(path.name, []).append(path)
    return by_name


def write_suite(out: Path, codec_dir: str, suite: dict, files: dict[str, Path]) -> None:
    """The suite's JSON and its resource links (vector name -> stream)."""
    (out / "test_suites" / codec_dir).mkdir(parents=True, exist_ok=True)
    with open(out / "test_suites" / codec_dir / f"{suite['name']}.json", "w", encoding="utf-8") as f:
        json.dump(suite, f, indent=4)
        f.write("\n")
    for vector in suite["test_vectors"]:
        link_dir = out / "resources" / suite["name"] / vector["name"]
        link_dir.mkdir(parents=True, exist_ok=True)
        link = link_dir / os.path.basename(vector["input_file"])
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(files[vector["name"]])


def upstream(vectors: Path, out: Path, by_name: dict[str, list[Path]]) -> int:
    """The upstream suites, cut down to the verified vectors the store has."""
    made = 0
    for definition in sorted(vectors.glob("reference-suites/fluster-*/*/*.json")):
        suite = json.loads(definition.read_text())
        kept, files, missing, differ = [], {}, 0, []
        for vector in suite["test_vectors"]:
            name = os.path.basename(vector["input_file"])
            candidates = by_name.get(name, [])
            if not candidates:
                missing += 1
                continue
            for path in candidates:
                ours = first_md5(path.with_name(name + ".md5")) or first_md5(
                    path.with_name(name + ".jm.md5")
                )
                if ours == vector["result"].lower():
                    kept.append(vector)
                    files[vector["name"]] = path
                    break
            else:
                differ.append(vector["name"])
        total = len(suite["test_vectors"])
        if not kept:
            print(f"{suite['name']}: none of its {total} vectors in the store, not made")
            continue
        suite["test_vectors"] = kept
        suite["description"] = (
            f"{suite.get('description', suite['name'])} ({len(kept)} of its {total} vectors: "
            f"those in the daedalus vector store)"
        )
        write_suite(out, definition.parent.name, suite, files)
        made += 1
        extra = f", {len(differ)} whose stream differs ({', '.join(differ)})" if differ else ""
        print(f"{suite['name']}: {len(kept)} of {total} vectors ({missing} not in the store{extra})")
    return made


def daedalus_vp9(vectors: Path, out: Path) -> int:
    """DAEDALUS-VP9 from the store's VP9 streams and their whole-output MD5s."""
    kept, files = [], {}
    with open(vectors / "MANIFEST.tsv", encoding="utf-8") as manifest:
        for line in manifest:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or fields[0] != "vp9":
                continue
            path = vectors / fields[1]
            result = first_md5(path.with_name(path.name + ".whole.md5"))
            if not path.is_file() or not result:
                continue
            name = path.name.split(".")[0]
            kept.append(
                {
                    "name": name,
                    "source": f"daedalus vector store: {fields[1]}",
                    "source_checksum": "",
                    "input_file": path.name,
                    "output_format": "yuv420p10le" if fields[2] == "10" else "yuv420p",
                    "result": result,
                }
            )
            files[name] = path
    if not kept:
        print("DAEDALUS-VP9: no VP9 stream with a .whole.md5 in the store, not made")
        return 0
    suite = {
        "name": "DAEDALUS-VP9",
        "codec": "VP9",
        "description": "VP9 streams of the daedalus vector store (cros-codecs, libvpx), "
        "references from libvpx",
        "test_vectors": kept,
    }
    write_suite(out, "vp9", suite, files)
    print(f"DAEDALUS-VP9: {len(kept)} vectors")
    return 1


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    vectors, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    if not (vectors / "MANIFEST.tsv").is_file():
        print(f"suites.py: {vectors}/MANIFEST.tsv not found", file=sys.stderr)
        return 1
    by_name = index(vectors)
    made = upstream(vectors, out, by_name) + daedalus_vp9(vectors, out)
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
