#!/usr/bin/env python3
"""Reads a Gatehouse log written with `log: {format: json}` (Tests/e2e/operations.sh).

  audit.py LOG lint        prints `lines=N bad=M`: M lines are not one JSON object each
  audit.py LOG uri URI     prints the audit lines (message "decision") whose uri is URI as
                           `n=COUNT decision=.. status=.. user=.. cached=.. log=..`, the values
                           of the last one JSON-encoded, so that types show (200 vs "200")
  audit.py LOG allow-as USER   how many audit lines allow USER
"""
import json
import sys


def records(path):
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            if not raw:
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                yield raw, None
                continue
            yield raw, obj if isinstance(obj, dict) else None


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "lint":
        n = bad = 0
        for _, obj in records(path):
            n += 1
            bad += obj is None
        print(f"lines={n} bad={bad}")
    elif mode == "uri":
        found = [o for _, o in records(path) if o and o.get("message") == "decision" and o.get("uri") == sys.argv[3]]
        if not found:
            print("n=0")
            return
        last = found[-1]
        fields = " ".join(f"{k}={json.dumps(last.get(k))}" for k in ("decision", "status", "user", "cached", "log"))
        print(f"n={len(found)} {fields}")
    elif mode == "allow-as":
        print(sum(1 for _, o in records(path) if o and o.get("message") == "decision"
                  and o.get("decision") == "allow" and o.get("user") == sys.argv[3]))


main()
