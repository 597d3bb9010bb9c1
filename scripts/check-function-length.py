#!/usr/bin/env python3
"""Fails when a function body in the given directories is longer than the limit (default 60
lines, signature to closing brace). A brace scan, not a parser: comments, string and character
literals are blanked first; a '{' opens a function when the text before it (since the last ';',
'{' or '}') has a parameter list and is not a namespace, class, struct, enum or initializer.
Lambdas and blocks count toward the function they are in.

  scripts/check-function-length.py [--max N] DIR...
"""
import argparse
import pathlib
import re
import sys


def blank(text):
    """Comments and literals replaced by spaces, newlines kept (line numbers stay right)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            end = text.find(")" + (m.group(1) if m else "") + '"', i)
            j = n if end < 0 else end + len(m.group(1) if m else "") + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """(name, first line, last line) of every function body."""
    text = blank(text)
    stack = []  # (kind, start line, name)
    head_start = 0
    line = 1
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        if c not in "{};":
            continue
        if c == ";":
            head_start = i + 1
            continue
        if c == "{":
            head = text[head_start:i]
            inside_function = any(k == "func" for k, _, _ in stack)
            kind = "block"
            if not inside_function:
                flat = " ".join(head.split())
                if re.search(r"\bnamespace\b", flat) or re.search(r"\b(class|struct|enum|union)\b[^(]*$", flat):
                    kind = "scope"
                elif "(" in flat and not flat.rstrip().endswith("=") and not re.search(r"=\s*$", flat):
                    kind = "func"
            start = line - head.count("\n") if kind == "func" else line
            name = re.findall(r"([~\w:]+)\s*\(", head)
            stack.append((kind, start, name[0] if name else "?"))
            head_start = i + 1
        else:  # '}'
            if stack:
                kind, start, name = stack.pop()
                if kind == "func":
                    yield name, start, line
            head_start = i + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=60)
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    bad = 0
    for d in args.dirs:
        for path in sorted(pathlib.Path(d).rglob("*")):
            if path.suffix not in (".cpp", ".hpp"):
                continue
            for name, first, last in functions(path.read_text()):
                if last - first + 1 > args.max:
                    print(f"{path}:{first}: {name} is {last - first + 1} lines (max {args.max})")
                    bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
