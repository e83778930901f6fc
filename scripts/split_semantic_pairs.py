#!/usr/bin/env python3
"""Splits labelled question pairs into the dev and test splits of the semantic cache's guard
(evals/semantic/{dev,test}.toml), by anchor: every pair whose `a` is the same question (case and
spacing aside) goes to the same split, chosen by the parity of SHA-256 of that question. The
split was made once, before the guard was designed; the guard is tuned on dev only.

Usage: scripts/split_semantic_pairs.py OUT_DIR SOURCE.toml...  (prints counts only)
"""
import hashlib
import sys
import tomllib
from collections import Counter

FIELDS = ("a", "b", "expect", "family", "domain", "source")


def quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    out_dir, sources = sys.argv[1], sys.argv[2:]
    splits = {"dev": [], "test": []}
    for path in sources:
        with open(path, "rb") as f:
            for pair in tomllib.load(f)["pairs"]:
                anchor = " ".join(pair["a"].lower().split())
                digest = hashlib.sha256(anchor.encode()).digest()
                splits["test" if digest[-1] % 2 else "dev"].append(pair)
    for name, pairs in splits.items():
        with open(f"{out_dir}/{name}.toml", "w") as f:
            f.write(f"# The {name} split of the semantic cache's labelled pairs: see README.md.\n")
            for pair in pairs:
                f.write("\n[[pairs]]\n")
                for field in FIELDS:
                    if field in pair:
                        f.write(f"{field} = {quote(pair[field])}\n")
        counts = Counter((p["expect"]) for p in pairs)
        print(name, len(pairs), dict(counts))


if __name__ == "__main__":
    main()
