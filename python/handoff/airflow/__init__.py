"""Airflow side of handoff: the DAG factory, the curated operators, the completion callback.

The only package of handoff that imports Airflow.
"""

from .factory import build_dag, dags_from_env, load_dags

__all__ = ["build_dag", "dags_from_env", "load_dags"]
