#!/usr/bin/python3
"""Every C or C++ code block of a guide chapter must be an excerpt of a source file that the
test suite builds and runs, so the chapter's code is known to compile and work.

usage: check_snippets.py CHAPTER.md SOURCE... [-- CHAPTER.md SOURCE... ...]

A ```c or ```cpp block passes when its lines, split into pieces at elision lines (a line that
is only "...", "// ..." or "/* ... */", indentation allowed), appear in one of the SOURCE files
piece by piece, each piece as consecutive lines and the pieces in order (trailing whitespace
ignored). Blocks of other languages (sh, python, text) are not checked.
"""
import pathlib
import re
import sys

ELISION = re.compile(r"^\s*(\.\.\.|// \.\.\.|/\* \.\.\. \*/)\s*$")


def pieces(block):
    out, cur = [], []
    for line in block.splitlines():
        if ELISION.match(line):
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(line.rstrip())
    if cur:
        out.append(cur)
    return out


def find(lines, piece, start):
    """Index after the first occurrence of `piece` in `lines` at or after `start`, or -1."""
    n = len(piece)
    for i in range(start, len(lines) - n + 1):
        if lines[i:i + n] == piece:
            return i + n
    return -1


def excerpt_of(block, lines):
    pos = 0
    for piece in pieces(block):
        pos = find(lines, piece, pos)
        if pos < 0:
            return False
    return True


def check(chapter, sources):
    blocks = re.findall(r"^```(?:c|cpp)\n(.*?)^```$", chapter.read_text(), flags=re.S | re.M)
    texts = {s: [line.rstrip() for line in s.read_text().splitlines()] for s in sources}
    bad = 0
    for i, block in enumerate(blocks, 1):
        if not any(excerpt_of(block, lines) for lines in texts.values()):
            first = block.strip().splitlines()[0] if block.strip() else ""
            print(f"FAIL: {chapter.name}: code block {i} ({first!r}) is not an excerpt of "
                  f"{', '.join(s.name for s in sources)}")
            bad += 1
    print(f"{'OK' if not bad else 'FAIL'}: {chapter.name}: {len(blocks) - bad} of {len(blocks)} "
          f"C/C++ blocks are excerpts of {', '.join(s.name for s in sources)}")
    return bad


def main(argv):
    groups, cur = [], []
    for arg in argv[1:]:
        if arg == "--":
            groups.append(cur)
            cur = []
        else:
            cur.append(pathlib.Path(arg))
    groups.append(cur)
    if any(len(g) < 2 for g in groups):
        print(__doc__)
        return 2
    return 1 if sum(check(g[0], g[1:]) for g in groups) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
