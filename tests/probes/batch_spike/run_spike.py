"""Spike runner (issue #20): start a real stack (with triggerer), run scenarios, print JSON lines.

.venv/bin/python tests/probes/batch_spike/run_spike.py SCENARIO[,SCENARIO...]
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests"))
from support.airflow_stack import _session_members, start_airflow_stack  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of_session(sid: int) -> float:
    total = 0
    for pid in _session_members({sid}):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / TICK


def cpu(stack) -> dict[str, float]:
    return {name: cpu_of_session(p.pid) for name, p in stack.processes.items()}


def delta(a, b):
    return {k: round(b[k] - a[k], 2) for k in a}


def when(v):
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() if v else None


def chain(n, prefix="m"):
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    return ids, {ids[i]: [ids[i - 1]] for i in range(1, n)}


def main() -> int:
    scenarios = sys.argv[1].split(",")
    work = Path(tempfile.mkdtemp(prefix="spike-"))
    events = work / "events"
    events.mkdir()
    dags = []
    wide = [f"w{i:04d}" for i in range(200)]
    dags.append({"dag_id": "wide200", "kind": "models", "tasks": wide})
    dags.append({"dag_id": "empty200", "kind": "empty", "tasks": wide})
    wide1k = [f"w{i:04d}" for i in range(1000)]
    dags.append({"dag_id": "wide1000", "kind": "models", "tasks": wide1k})
    dags.append({"dag_id": "empty1000", "kind": "empty", "tasks": wide1k})
    ids, edges = chain(20)
    dags.append({"dag_id": "chain20", "kind": "models", "tasks": ids, "edges": edges})
    # semantics
    dags.append({"dag_id": "sem", "kind": "models",
                 "tasks": ["ok", "fail", "child_of_fail", "human_s", "human_f", "child_of_human_f", "retry_ok"],
                 "edges": {"child_of_fail": ["fail"], "child_of_human_f": ["human_f"]},
                 "retries": {"retry_ok": 1}})
    # xcom transport: 200 models in a 10-level tree, batch publishes 20 chunks over 10 s
    xids = [f"x{i:04d}" for i in range(200)]
    xedges = {xids[i]: [xids[i - 20]] for i in range(20, 200)}
    schedule = [[0.5 * (k + 1), {t: {"status": "success", "message": "OK", "lines": [f"{t} built"]}
                                  for t in xids[10 * k:10 * k + 10]}] for k in range(20)]
    dags.append({"dag_id": "xtree200", "kind": "models", "source": "xcom", "tasks": xids, "edges": xedges,
                 "batch": schedule, "poll_s": 0.5})
    aedges = dict(xedges)
    for r in xids:
        aedges[r] = aedges.get(r, []) + ["batch"]
    dags.append({"dag_id": "atree200", "kind": "alone", "tasks": xids, "edges": aedges, "api_batch": schedule})
    dags.append({"dag_id": "atree200s", "kind": "alone", "tasks": xids, "edges": aedges, "api_batch": schedule,
                 "mode": "single"})
    kids = [f"k{i:04d}" for i in range(1000)]
    kedges = {kids[i]: [kids[i - 50]] for i in range(50, 1000)}
    for r in kids:
        kedges[r] = kedges.get(r, []) + ["batch"]
    kschedule = [[0.5 * (k + 1), {t: {"status": "success"} for t in kids[25 * k:25 * k + 25]}] for k in range(40)]
    dags.append({"dag_id": "atree1000", "kind": "alone", "tasks": kids, "edges": kedges, "api_batch": kschedule})
    spec = {"events_dir": str(events), "dags": dags}
    (work / "spec.json").write_text(json.dumps(spec))
    dag_folder = work / "dags"
    dag_folder.mkdir()
    (dag_folder / "spike_dags.py").write_text((HERE / "dags" / "spike_dags.py").read_text())
    env = {"PYTHONPATH": f"{HERE}:{REPO / 'python'}", "SPIKE_SPEC": str(work / "spec.json"),
           "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2000", "AIRFLOW__CORE__PARALLELISM": "4"}
    stack = start_airflow_stack(work / "home", dag_folder, env=env, triggerer=os.environ.get("SPIKE_TRIGGERER", "1") == "1")
    out = []
    try:
        stack.wait_for_dags(*[d["dag_id"] for d in dags], timeout=180)
        time.sleep(5)
        c0 = cpu(stack)
        time.sleep(20)
        idle = delta(c0, cpu(stack))
        print(json.dumps({"idle_20s": idle}), flush=True)
        api = stack.airflow_api
        for sc in scenarios:
            d = next(x for x in dags if x["dag_id"] == sc)
            run_id = f"spike_{sc}_{int(time.time())}"
            rdir = events / run_id.replace(":", "_").replace("+", "_")
            rdir.mkdir()
            if sc == "sem":
                for t, st in {"ok": "success", "fail": "failed", "retry_ok": "failed"}.items():
                    (rdir / f"{t}.json").write_text(json.dumps({"status": st, "message": "x", "at": time.time()}))
            elif d.get("source", "file") == "file":
                for t in d["tasks"]:
                    (rdir / f"{t}.json").write_text(json.dumps({"status": "success", "at": time.time()}))
            c1 = cpu(stack)
            t1 = time.time()
            stack.trigger(sc, None, run_id=run_id)
            if sc == "sem":
                stack.wait_for_task(sc, run_id, "human_s", ["deferred"], 60)
                stack.wait_for_task(sc, run_id, "human_f", ["deferred"], 60)
                for t, st in (("human_s", "success"), ("human_f", "failed")):
                    status, ans = api.request("PATCH", f"/api/v2/dags/{sc}/dagRuns/{run_id}/taskInstances/{t}",
                                              body={"new_state": st})
                    print(json.dumps({"patch": t, "status": status}), flush=True)
                # now publish results for the human-marked ones: must be ignored
                for t in ("human_s", "human_f"):
                    (rdir / f"{t}.json").write_text(json.dumps({"status": "failed" if t == "human_s" else "success"}))
            run = stack.wait_for_run(sc, run_id, timeout=900)
            t2 = time.time()
            c2 = cpu(stack)
            tis = api.list_task_instances(sc, run_id)
            ends = sorted(when(ti["end_date"]) for ti in tis if ti["end_date"])
            starts = sorted(when(ti["start_date"]) for ti in tis if ti["start_date"])
            res = {"scenario": sc, "state": run["state"], "wall_s": round(t2 - t1, 2),
                   "first_start_s": round(starts[0] - t1, 2) if starts else None,
                   "last_end_s": round(ends[-1] - t1, 2) if ends else None,
                   "cpu": delta(c1, c2), "tasks": len(tis),
                   "states": {s: sum(1 for ti in tis if ti["state"] == s) for s in {ti["state"] for ti in tis}}}
            if sc.startswith("chain"):
                by = {ti["task_id"]: when(ti["end_date"]) for ti in tis}
                ids = sorted(by)
                hops = [by[ids[i]] - by[ids[i - 1]] for i in range(1, len(ids))]
                res["hop_s"] = {"min": round(min(hops), 2), "median": round(sorted(hops)[len(hops) // 2], 2),
                                "max": round(max(hops), 2)}
            if sc == "sem":
                res["detail"] = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis}
            if sc.startswith("a"):
                lat = []
                for ti in tis:
                    note = ti.get("note") or ""
                    if note.startswith("published_at="):
                        lat.append(when(ti["end_date"]) - float(note.split("=")[1]))
                lat.sort()
                res["latency_s"] = {"n": len(lat), "p50": round(lat[len(lat) // 2], 2),
                                    "p95": round(lat[int(len(lat) * 0.95)], 2), "max": round(lat[-1], 2)}
                res["tries"] = {str(n): sum(1 for ti in tis if ti["try_number"] == n) for n in {ti["try_number"] for ti in tis}}
            if sc.startswith("x"):
                lat = []
                for ti in tis:
                    if ti["task_id"] == "batch":
                        continue
                    status, x = api.request("GET", f"/api/v2/dags/{sc}/dagRuns/{run_id}/taskInstances/"
                                            f"{ti['task_id']}/xcomEntries/published_at")
                    if status == 200:
                        lat.append(when(ti["end_date"]) - float(x["value"]))
                lat.sort()
                res["latency_s"] = {"n": len(lat), "p50": round(lat[len(lat) // 2], 2),
                                    "p95": round(lat[int(len(lat) * 0.95)], 2), "max": round(lat[-1], 2)}
            print(json.dumps(res), flush=True)
            out.append(res)
            time.sleep(3)
    finally:
        print("home:", work, flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
