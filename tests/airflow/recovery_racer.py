"""One racer of test_recovery_e2e.py's race: a process that loads everything first, waits for a
"go" file (having touched ready-<pid> beside it), then does what a completion callback or the sweep
does, at once with the others.

    python recovery_racer.py callback GO_FILE DAG_ID TASK_ID RUN_ID LOGICAL_DATE TRY_NUMBER
    python recovery_racer.py sweep GO_FILE

Settings come from the environment (HANDOFF_REGISTRY_URL, HANDOFF_AIRFLOW_API_*). Prints the
actions as JSON on stdout (the sweep: `handoff reconcile --format json` prints them itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path


def main(argv: list[str]) -> int:
    role, go = argv[0], Path(argv[1])
    from handoff.airflow_api import AirflowApi
    from handoff.cli import main as handoff
    from handoff.recovery import handle_completion
    from handoff.registry import Registry

    api = AirflowApi.from_env()
    api.token()  # logged in before the start, like a warm worker
    go.with_name(f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 900
    while not go.exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.002)
    if role == "sweep":
        return handoff(["reconcile", "--since", "1h", "--format", "json"])
    dag_id, task_id, run_id, logical, try_number = argv[2:7]
    moment = datetime.fromisoformat(logical)
    # stdout is this racer's document; a callback may post (and Airflow's logging writes to stdout)
    with contextlib.redirect_stdout(sys.stderr), Registry(must_exist=True) as registry:
        actions = handle_completion(registry, api, dag_id=dag_id, task_id=task_id, run_id=run_id,
                                    logical_date=moment, run_after=moment, try_number=int(try_number))
    print(json.dumps([a.as_dict() for a in actions]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
