#!/usr/bin/env bash
# The bench venv: astronomer-cosmos (and pyinstrument) layered over the project's .venv.
#
# bench/.venv has only cosmos and the few packages it adds; a .pth line makes the project's
# .venv site-packages visible behind them, so Airflow, dbt and handoff are the very same
# installs the product uses (no second Airflow that could differ). pip runs with the main venv's
# frozen versions as constraints, and pip never uninstalls outside its own prefix, so the main
# venv is not touched. Cosmos is never a dependency of handoff itself.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
main_python="${MAIN_PYTHON:-$repo/.venv/bin/python}"
venv="$here/.venv"
stamp="$venv/.bench-ready"
want="astronomer-cosmos==1.15.1 pyinstrument==5.1.3"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
main_site="$("$main_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
base_python="$("$main_python" -c 'import sys; print(sys._base_executable)')"
rm -rf "$venv"
"$base_python" -m venv "$venv"
bench_site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import site; site.addsitedir('$main_site')" > "$bench_site/zz_handoff_main_venv.pth"
constraints="$venv/constraints.txt"
"$main_python" -m pip freeze --exclude-editable | grep -v '^-e ' > "$constraints"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints" $want
# the product's Airflow must be the one the bench sees
"$venv/bin/python" - "$main_site" <<'PY'
import sys, airflow, dbt.version, cosmos
main_site = sys.argv[1]
assert airflow.__file__.startswith(main_site), airflow.__file__
print(f"bench venv: airflow {airflow.__version__} (from the project venv), cosmos {cosmos.__version__}")
PY
echo "$want" > "$stamp"
