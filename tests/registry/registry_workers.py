"""Separate processes for the concurrency and crash tests (run as scripts, never imported by pytest).

    python registry_workers.py publisher URL DOMAIN PLAN...   publish each plan in turn, as a CI job would
                                                               (a new Registry per plan); starts when a
                                                               line arrives on stdin; prints a JSON summary
    python registry_workers.py crasher URL PLAN               publish PLAN, but stop inside the transaction
                                                               right after the domain's tasks are inserted,
                                                               print INSIDE and sleep until killed
"""

from __future__ import annotations

import json
import sys
import time
import traceback


def publisher(url: str, domain: str, paths: list[str]) -> int:
    from handoff.errors import HandoffError
    from handoff.plan import load_plan
    from handoff.registry.store import Registry

    plans = [load_plan(p) for p in paths]
    print("READY", flush=True)
    sys.stdin.readline()
    summary: dict = {"domain": domain, "published": 0, "retries": 0, "reasons": [], "errors": [], "seconds": []}
    for round_number, plan in enumerate(plans):
        started = time.perf_counter()
        try:
            with Registry(url) as registry:
                registry.publish([plan], label=f"round-{round_number}", validate=False)
                summary["retries"] += registry.stats.retries
                summary["reasons"] += registry.stats.reasons
            summary["published"] += 1
        except HandoffError as exc:
            summary["errors"].append(exc.one_line())
        except Exception:  # noqa: BLE001 - a bug: report it in the summary, do not hide it
            summary["errors"].append(traceback.format_exc())
        summary["seconds"].append(round(time.perf_counter() - started, 4))
    print(json.dumps(summary), flush=True)
    return 0


def crasher(url: str, path: str) -> int:
    from handoff.plan import load_plan
    from handoff.registry import publishing, store

    insert_rows = publishing.insert_rows

    def insert_then_stop(conn, table, rows):  # type: ignore[no-untyped-def]
        insert_rows(conn, table, rows)
        if table.name == "tasks":  # old rows deleted, half the new ones written, not committed
            print("INSIDE", flush=True)
            time.sleep(600)

    publishing.insert_rows = insert_then_stop
    with store.Registry(url) as registry:
        registry.publish([load_plan(path)], label="crashed")
    print("COMMITTED", flush=True)  # never reached: the test kills this process while it sleeps
    return 1


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "publisher":
        sys.exit(publisher(rest[0], rest[1], rest[2:]))
    sys.exit(crasher(rest[0], rest[1]))
