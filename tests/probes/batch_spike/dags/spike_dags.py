"""Spike DAGs, described by the JSON file named in SPIKE_SPEC."""
import json
import os
from datetime import datetime, timedelta, timezone

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from spike_batch import SpikeAlone, SpikeApiBatch, SpikeBatch, SpikeModel

spec = json.loads(open(os.environ["SPIKE_SPEC"]).read())
for d in spec["dags"]:
    dag = DAG(dag_id=d["dag_id"], schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
              catchup=False, max_active_runs=4)
    tasks = {}
    for task_id in d["tasks"]:
        if d["kind"] == "alone":
            tasks[task_id] = SpikeAlone(task_id=task_id, dag=dag)
        elif d["kind"] == "empty":
            tasks[task_id] = EmptyOperator(task_id=task_id, dag=dag)
        else:
            tasks[task_id] = SpikeModel(task_id=task_id, dag=dag, source=d.get("source", "file"),
                                        events_dir=spec["events_dir"], poll_s=d.get("poll_s", 0.2),
                                        retries=d.get("retries", {}).get(task_id, 0),
                                        retry_delay=timedelta(seconds=2), pool=d.get("pool", "default_pool"))
    if d.get("api_batch") is not None:
        tasks["batch"] = SpikeApiBatch(task_id="batch", dag=dag, schedule=d["api_batch"], mode=d.get("mode", "bulk"))
    if d.get("batch") is not None:
        tasks["batch"] = SpikeBatch(task_id="batch", dag=dag, schedule=d["batch"], die_after=d.get("die_after"))
    for task_id, ups in d.get("edges", {}).items():
        for up in ups:
            tasks[up].downstream_task_ids.add(task_id)
            tasks[task_id].upstream_task_ids.add(up)
    globals()[d["dag_id"]] = dag
