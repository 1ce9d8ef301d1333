#!/usr/bin/env bash
# `make bench`: the benchmark suite (docs/benchmarks.md). Extra arguments go to `python -m bench`
# (e.g. --only build,parse --repeats 5, or --quick).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bench/venv.sh                      # bench/.venv: astronomer-cosmos + pyinstrument over .venv
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False DO_NOT_TRACK=1 SCARF_NO_ANALYTICS=true \
       DBT_SEND_ANONYMOUS_USAGE_STATS=False
# as on a deployed worker, Python reads handoff's modules from cached bytecode: a session that sets
# PYTHONDONTWRITEBYTECODE would make every fresh task process compile them again (docs/benchmarks.md)
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m compileall -q python/handoff >/dev/null
exec .venv/bin/python -m bench "$@"
