"""The one DAG file of a handoff deployment: every plan in HANDOFF_PLANS_DIR becomes Airflow DAGs.

Plans are data; this file never changes when domains change (docs/deployment.md).
"""

from handoff.airflow import dags_from_env

globals().update(dags_from_env())
