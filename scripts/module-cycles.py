#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a cycle.

Usage: module-cycles.py SRC_DIR...

Two levels are checked: between the top-level modules of the crate
(`walk` -> `interpreter` -> `walk` is a cycle), and between the submodules of
one top-level module (`output::render` <-> `output::flamegraph`). A module's
own children and its parent are not edges: a parent re-exporting its child is
how Rust modules are built. `#[cfg(test)] mod tests` blocks are ignored.
"""
import os
import re
import sys


def modules(root):
    """{"walk::frames": source text} for every .rs file under root."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            with open(path, encoding="utf-8") as f:
                text = f.read()
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
            found["::".join(parts)] = text
    return found


def references(module, text):
    """Module paths (as lists) that `text` names through crate:: or super::."""
    out = []
    for prefix, tail in re.findall(r"crate::((?:[a-z_0-9]+::)*)(\{[^}]*\}|[a-z_0-9]+)", text):
        if tail.startswith("{"):
            items = [item.strip().split("::")[0] for item in tail[1:-1].split(",")]
        else:
            items = [tail]
        out += [prefix + item for item in items if re.fullmatch(r"[a-z_0-9]+", item)]
        if prefix:
            out.append(prefix.rstrip(":"))
    parent = module.split("::")[:-1]
    out += ["::".join(parent + [item]) for item in re.findall(r"\bsuper::([a-z_0-9]+)", text)]
    return [path.split("::") for path in out if path]


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def check(root):
    mods = modules(root)
    tops = {name.split("::")[0] for name in mods if name}
    edges, where = {}, {}
    for name, text in mods.items():
        if not name:
            continue
        parts = name.split("::")
        for ref in references(name, text):
            if ref[0] not in tops:
                continue
            if ref[0] != parts[0]:
                edge = (parts[0], ref[0])
            elif len(parts) > 1 and len(ref) > 1 and ref[1] != parts[1] and "::".join(ref[:2]) in mods:
                edge = ("::".join(parts[:2]), "::".join(ref[:2]))
            else:
                continue
            edges.setdefault(edge[0], set()).add(edge[1])
            where.setdefault(edge, set()).add(name)
    found = cycles(edges)
    for component in found:
        print(f"{root}: modules import each other in a cycle: {' <-> '.join(component)}")
        for a in component:
            for b in component:
                if (a, b) in where:
                    print(f"    {a} -> {b} (in {', '.join(sorted(where[(a, b)]))})")
    return not found


if __name__ == "__main__":
    ok = all([check(root) for root in sys.argv[1:]])
    sys.exit(0 if ok else 1)
