#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a cycle.

For every library crate of the workspace, it reads each module's non-test source, collects
the paths it names (`crate::…`, `super::…`, `self::…`, in `use` lines and in code), and
adds an edge between the two sibling modules that contain the importer and the imported
(for `crate::zones` used in `serve::fast`, an edge serve → zones under the crate root).
A strongly connected set of two or more siblings is a cycle. Test code (`#[cfg(test)]`
modules and `tests.rs` files) is left out: tests may reach anywhere.

Usage: e2e/module_cycles.py [crate-dir ...]   (default: every workspace member with src/lib.rs)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def members():
    text = (ROOT / "Cargo.toml").read_text()
    listed = re.search(r"members\s*=\s*\[([^\]]*)\]", text).group(1)
    return [ROOT / m for m in re.findall(r'"([^"]+)"', listed)]


def modules(src):
    """Module path (tuple) → source file, for every module file of the library."""
    found = {}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        parts = list(rel.parts)
        if parts[0] == "bin" or parts == ["main.rs"]:
            continue
        if parts[-1] in ("lib.rs",) and len(parts) == 1:
            found[()] = path
            continue
        if parts[-1] == "mod.rs":
            parts = parts[:-1]
        else:
            parts[-1] = parts[-1][:-3]
        if parts[-1] == "tests":
            continue
        found[tuple(parts)] = path
    return found


def strip_tests(text):
    """The source without `#[cfg(test)]` items (a test module runs to its closing brace)."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]":
            depth = 0
            opened = False
            i += 1
            while i < len(lines):
                depth += lines[i].count("{") - lines[i].count("}")
                opened = opened or "{" in lines[i]
                if (opened and depth <= 0) or (not opened and lines[i].rstrip().endswith(";")):
                    break
                i += 1
            i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def expand_use(body):
    """`a::{b, c::{d}}` → ['a::b', 'a::c::d']."""
    body = re.sub(r"\s+", "", body)

    def split(s):
        items, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            items.append(cur)
        return items

    def walk(s):
        m = re.match(r"^(.*?)::\{(.*)\}$", s)
        if m:
            prefix = m.group(1)
            return [prefix + "::" + x for item in split(m.group(2)) for x in walk(item)]
        return [s]

    return walk(body)


def references(text):
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand_use(m.group(1)))
    code = re.sub(r"\buse\s+[^;]+;", "", text)
    code = re.sub(r"//[^\n]*", "", code)
    paths.extend(re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", code))
    return [p.split(" as ")[0] for p in paths if p.split("::")[0] in ("crate", "super", "self")]


def resolve(path, here, known):
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    else:
        base = here
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
        rest = parts
    target = tuple(base)
    for part in rest:
        if target + (part,) in known:
            target = target + (part,)
        else:
            break
    return target


def cycles(edges):
    """Strongly connected components of two or more nodes (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    nodes = set(edges) | {t for ts in edges.values() for t in ts}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def check(crate):
    src = crate / "src"
    if not (src / "lib.rs").exists():
        return []
    known = modules(src)
    levels = {}
    witnesses = {}
    for here, path in known.items():
        text = strip_tests(path.read_text())
        for ref in references(text):
            target = resolve(ref, here, known)
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common == len(here) or common == len(target):
                continue  # a module and its own ancestor or descendant
            parent = here[:common]
            a, b = here[common], target[common]
            levels.setdefault(parent, {}).setdefault(a, set()).add(b)
            witnesses.setdefault((parent, a, b), f"{'::'.join(here) or 'crate'} uses {ref}")
    found = []
    for parent, edges in sorted(levels.items()):
        for component in cycles(edges):
            where = "::".join(parent) or "crate root"
            detail = [witnesses[(parent, a, b)] for a in component for b in edges.get(a, ())
                      if b in component]
            found.append(f"{crate.name}: {where}: {' ↔ '.join(component)} ({'; '.join(detail)})")
    return found


def main():
    crates = [Path(a).resolve() for a in sys.argv[1:]] or members()
    problems = [p for crate in crates for p in check(crate)]
    for problem in problems:
        print(f"import cycle: {problem}")
    checked = [c.name for c in crates if (c / "src" / "lib.rs").exists()]
    if problems:
        sys.exit(1)
    print(f"no import cycles between modules in {', '.join(checked)}")


if __name__ == "__main__":
    main()
