#!/usr/bin/env python3
"""Reads a Prometheus text exposition on stdin (Tests/e2e/operations.sh).

  metric.py NAME [LABEL=VALUE ...]   the sum of the series NAME whose labels include every
                                     LABEL=VALUE (0 when none matches); integers print as such
  metric.py --families               the metric families (# TYPE lines), one per line
  metric.py --lint                   every line that is neither a comment nor a sample
"""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(?:,|$)')


def samples(lines):
    for line in lines:
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            yield line, None, None, None
            continue
        yield line, m.group(1), dict(LABEL.findall(m.group(2) or "")), m.group(3)


def main():
    lines = sys.stdin.readlines()
    if sys.argv[1:] == ["--families"]:
        for line in lines:
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "#" and parts[1] == "TYPE":
                print(parts[2])
        return
    if sys.argv[1:] == ["--lint"]:
        for line, name, _, value in samples(lines):
            if name is None:
                print(line)
                continue
            try:
                float(value)
            except ValueError:
                print(line)
        return
    name = sys.argv[1]
    want = dict(arg.split("=", 1) for arg in sys.argv[2:])
    total = 0.0
    for _, sample_name, labels, value in samples(lines):
        if sample_name == name and all(labels.get(k) == v for k, v in want.items()):
            total += float(value)
    print(int(total) if total == int(total) else total)


main()
