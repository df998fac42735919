#!/usr/bin/env python3
"""Fails when a Markdown file names a repository path that does not exist.

Usage: doc-paths.py FILE.md...

Checks every backticked token that looks like a path (it contains a `/` or
ends in a source file extension), outside fenced blocks. A token is looked
up relative to the folder in force, then from the repository root; a bare
file name must be in the folder in force, or, with none, anywhere in the
repository. The folder in force is set by a line that starts with a
backticked folder (`` `crates/pysampler-core/src/`, in the order... `` or
`` **`src/process/`: ...** ``) until the next heading, and, for one table
row, by a backticked folder in its first cell. Absolute paths
(`/proc/PID/...`), placeholders (`X.Y.toml`, `PID`, `…`) and globs are
skipped.
"""
import os
import re
import subprocess
import sys

EXTENSIONS = (".rs", ".py", ".toml", ".md", ".sh", ".cjs", ".json", ".mk")


def repo_files(root):
    out = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    return set(out)


def main(paths):
    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
    ).stdout.strip()
    files = repo_files(root)
    folders = {os.path.dirname(f) for f in files}
    for f in list(folders):
        while f:
            f = os.path.dirname(f)
            folders.add(f)
    names = {os.path.basename(f) for f in files}
    bad = 0
    for doc in paths:
        text = open(doc, encoding="utf-8").read()
        # Drop fenced blocks: diagrams abbreviate.
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        checked = 0
        base = ""
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.startswith("#"):
                base = ""
            lead = re.match(r"^(?:\*\*)?`([\w./-]+/)`", line)
            if lead:
                base = lead.group(1)
            row_base = base
            cell = re.match(r"^\| `([\w./-]+/)` \|", line)
            if cell:
                row_base = cell.group(1)
            for token in re.findall(r"`([^`\s]+)`", line):
                token = token.rstrip(",.:;")
                if token.startswith("/") or "…" in token or "*" in token:
                    continue
                if re.search(r"\bX\.Y|PID|TID|<", token):
                    continue
                if "/" not in token and not token.endswith(EXTENSIONS):
                    continue
                if "/" in token and not re.match(r"^[\w.-]+(/[\w.-]+)*/?$", token):
                    continue
                checked += 1
                def exists(path):
                    path = path.rstrip("/")
                    return path in files or path in folders

                if "/" in token:
                    ok = exists(row_base + token) or exists(token)
                elif row_base:
                    ok = exists(row_base + token)
                else:
                    ok = token in names
                if not ok:
                    bad += 1
                    print(f"{doc}:{lineno}: no such path: {token}")
        print(f"{doc}: {checked} paths checked", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
