#!/usr/bin/env python3
"""Splits the red-team cases (evals/redteam/attacks.toml and benign.toml, as written) into the
dev and test splits of the input guard (evals/redteam/{dev,test}.toml), by the parity of SHA-256
of each case's text. The split was made once, before the guard was tuned; the guard is tuned on
dev only and its figures are reported on test.

Usage: scripts/split_redteam.py OUT_DIR ATTACKS.toml BENIGN.toml  (prints counts only)
"""
import hashlib
import sys
import tomllib
from collections import Counter

FIELDS = ("text", "document", "expect", "family", "note")


def quote(text):
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = "".join(
        c if c.isprintable() or c in "\\" else f"\\u{ord(c):04x}" for c in escaped
    )
    return '"' + escaped + '"'


def main():
    out_dir, attacks, benign = sys.argv[1:4]
    splits = {"dev": [], "test": []}
    for path, expect in ((attacks, "attack"), (benign, "benign")):
        with open(path, "rb") as f:
            for case in tomllib.load(f)["case"]:
                case["expect"] = expect
                digest = hashlib.sha256(case["text"].encode()).digest()
                splits["test" if digest[-1] % 2 else "dev"].append(case)
    for name, cases in splits.items():
        with open(f"{out_dir}/{name}.toml", "w") as f:
            f.write(f"# The {name} split of the red-team cases: see README.md.\n")
            for case in cases:
                f.write("\n[[case]]\n")
                for field in FIELDS:
                    if field in case:
                        f.write(f"{field} = {quote(case[field])}\n")
        print(name, len(cases), dict(Counter(c["expect"] for c in cases)))


if __name__ == "__main__":
    main()
