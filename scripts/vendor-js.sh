#!/usr/bin/env bash
# Refreshes the JavaScript graph library vendored into python/handoff/ui/static/vendor/
# (`make vendor-js`): cytoscape.js and its dagre layout (which bundles @dagrejs/dagre), pinned,
# fetched from the npm registry with `npm pack` (no install scripts run), with their licences.
# Writes VERSIONS.json (version, sha256, size of every file) and fails if the total grows past
# the budget. To upgrade: change a version below, run `make vendor-js`, run the UI tests.
set -euo pipefail
CYTOSCAPE=3.35.0
CYTOSCAPE_DAGRE=4.0.1
DAGRE=3.1.3            # only its LICENCE: cytoscape-dagre's dist bundles it
BUDGET_BYTES=600000    # the map page ships these files; keep it light

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo/python/handoff/ui/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v npm >/dev/null || { echo "vendor-js: npm is needed (apt-get install npm)" >&2; exit 1; }
cd "$work"
npm pack --silent "cytoscape@$CYTOSCAPE" "cytoscape-dagre@$CYTOSCAPE_DAGRE" "@dagrejs/dagre@$DAGRE" >/dev/null
for tgz in *.tgz; do mkdir "${tgz%.tgz}"; tar xzf "$tgz" -C "${tgz%.tgz}"; done
mkdir -p "$dest"
rm -f "$dest"/*
cp "cytoscape-$CYTOSCAPE/package/dist/cytoscape.min.js" "$dest/cytoscape.min.js"
cp "cytoscape-dagre-$CYTOSCAPE_DAGRE/package/dist/cytoscape-dagre.min.js" "$dest/cytoscape-dagre.min.js"
cp "cytoscape-$CYTOSCAPE/package/LICENSE" "$dest/LICENSE.cytoscape"
cp "cytoscape-dagre-$CYTOSCAPE_DAGRE/package/LICENSE" "$dest/LICENSE.cytoscape-dagre"
cp "dagrejs-dagre-$DAGRE/package/LICENSE" "$dest/LICENSE.dagre"
python3 - "$dest" "$CYTOSCAPE" "$CYTOSCAPE_DAGRE" "$DAGRE" "$BUDGET_BYTES" <<'PY'
import hashlib, json, pathlib, sys
dest, cy, cyd, dagre, budget = pathlib.Path(sys.argv[1]), *sys.argv[2:5], int(sys.argv[5])
files = {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
         for p in sorted(dest.iterdir()) if p.name != "VERSIONS.json"}
doc = {"packages": {"cytoscape": cy, "cytoscape-dagre": cyd, "@dagrejs/dagre (bundled in cytoscape-dagre)": dagre},
       "source": "npm pack from the npm registry (scripts/vendor-js.sh)", "files": files}
(dest / "VERSIONS.json").write_text(json.dumps(doc, indent=2) + "\n")
total = sum(f["bytes"] for name, f in files.items() if name.endswith(".js"))
print(f"vendor-js: {len(files)} files, {total:,} bytes of JavaScript (budget {budget:,})")
if total > budget:
    sys.exit(f"vendor-js: {total:,} bytes is over the budget of {budget:,}: check the new versions")
PY
