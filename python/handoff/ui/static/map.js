/* handoff's domain map: domains as nodes, the models one domain reads from another as edges.
 * Layout and drawing: cytoscape.js with the dagre layered layout (vendored, see vendor/VERSIONS.json).
 * Data: the JSON in <script id="handoff-data"> (Registry.domain_map() plus "config"). Every name is
 * set with textContent, never parsed as HTML. A small, sparse mesh is drawn whole; above
 * config.focusThreshold domains, or with more than denseRatio hand-overs per domain, the map shows
 * one domain, its neighbours and its own hand-overs (the rest aggregated), and search moves it. */
(function () {
  "use strict";
  var started = performance.now();
  var data = JSON.parse(document.getElementById("handoff-data").textContent);
  var config = data.config || {};
  var THRESHOLD = config.focusThreshold || 60;
  var MAX_NEIGHBOURS = config.maxNeighbours || 16;
  var byName = {};
  data.domains.forEach(function (d) { byName[d.name] = d; });
  var out = {}, inn = {};
  data.edges.forEach(function (e) {
    (out[e.upstream] = out[e.upstream] || []).push(e);
    (inn[e.downstream] = inn[e.downstream] || []).push(e);
  });
  // a dense mesh (many hand-overs per domain) is a hairball drawn whole: open it on one domain too
  var DENSE = config.denseRatio || 2.5;
  var crowded = data.domains.length > THRESHOLD || data.edges.length > DENSE * Math.max(1, data.domains.length);
  var state = { mode: crowded ? "focus" : "all", focus: null, selected: null, filter: "" };
  var params = new URLSearchParams(window.location.search);
  var asked = params.get("domain") || config.focus || null;
  if (asked && byName[asked]) { state.focus = asked; state.selected = asked; }

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function link(text, href, top) {
    if (!href) return el("span", text);
    var a = el("a", text, { href: href });
    if (top) a.setAttribute("target", "_top");
    return a;
  }
  function fill(template, values) {
    if (!template) return null;
    return template.replace(/\{(\w+)\}/g, function (_, key) { return encodeURIComponent(values[key]); });
  }
  function box(label) { return 24 + 6.6 * Math.max.apply(null, label.split("\n").map(function (l) { return l.length; })); }
  function degree(name) { return (out[name] || []).length + (inn[name] || []).length; }
  function carried(edges) { return edges.reduce(function (n, e) { return n + e.models.length; }, 0); }

  // -- what is visible -----------------------------------------------------------------
  function visible() {
    var names, extra = [];
    if (state.mode === "all") {
      names = data.domains.map(function (d) { return d.name; });
    } else {
      if (!state.focus) {
        state.focus = data.domains.slice().sort(function (a, b) { return degree(b.name) - degree(a.name) || (a.name < b.name ? -1 : 1); })[0].name;
        state.selected = state.focus;
      }
      // one hop along a path: the domains it reads from and the domains reading from it, never a
      // sibling (mapview.neighbourhood, `handoff map --domain D --hops 1`, keeps the same set)
      names = [state.focus];
      [["upstream", inn[state.focus] || [], "upstream"], ["downstream", out[state.focus] || [], "downstream"]].forEach(function (side) {
        var edges = side[1].slice().sort(function (a, b) { return b.models.length - a.models.length; });
        edges.slice(0, MAX_NEIGHBOURS).forEach(function (e) { var n = e[side[2] === "upstream" ? "upstream" : "downstream"]; if (names.indexOf(n) < 0) names.push(n); });
        if (edges.length > MAX_NEIGHBOURS) extra.push({ side: side[0], count: edges.length - MAX_NEIGHBOURS, models: carried(edges.slice(MAX_NEIGHBOURS)) });
      });
    }
    var set = {};
    names.forEach(function (n) { set[n] = true; });
    // focus: only the focused domain's own hand-overs (upstream -> it -> downstream, three ranks)
    var edges = data.edges.filter(function (e) {
      return set[e.upstream] && set[e.downstream] && (state.mode === "all" || e.upstream === state.focus || e.downstream === state.focus);
    });
    return { names: names, edges: edges, extra: extra };
  }

  // -- the graph -----------------------------------------------------------------------
  var cy = null;
  function elements(view) {
    var items = [];
    view.names.forEach(function (n) {
      var d = byName[n];
      var models = d ? d.models : 0;
      var label = n + "\n" + (d ? models + " models" : "not published");
      items.push({ data: { id: "d:" + n, name: n, label: label, w: box(label), h: 40, missing: d ? 0 : 1 } });
    });
    view.extra.forEach(function (x) {
      var id = "more:" + x.side;
      var label = "+" + x.count + " more " + x.side + " domains\n(" + x.models + " models)";
      items.push({ data: { id: id, name: "", label: label, w: box(label), h: 40, more: 1 } });
      items.push({ data: { id: id + ":e", source: x.side === "upstream" ? id : "d:" + state.focus,
                           target: x.side === "upstream" ? "d:" + state.focus : id, label: "", more: 1 } });
    });
    view.edges.forEach(function (e) {
      items.push({ data: { id: "e:" + e.upstream + ">" + e.downstream, source: "d:" + e.upstream, target: "d:" + e.downstream,
                           label: e.models.length === 1 ? e.models[0] : e.models.length + " models", width: 1 + Math.min(6, Math.log2(1 + e.models.length)) } });
    });
    return items;
  }

  function draw() {
    var view = visible();
    var container = document.getElementById("graph");
    if (cy) cy.destroy();
    cy = window.cytoscape({
      container: container, elements: elements(view), minZoom: 0.1, maxZoom: 1.6,
      style: [
        { selector: "node", style: { "shape": "round-rectangle", "background-color": "#e8eefc", "border-color": "#2457c5",
          "border-width": 1.5, "label": "data(label)", "text-wrap": "wrap", "text-valign": "center", "font-size": 12,
          "width": "data(w)", "height": "data(h)", "color": "#1d2433" } },
        { selector: "node[missing = 1]", style: { "background-color": "#fde8e7", "border-color": "#b3261e", "border-style": "dashed" } },
        { selector: "node[more = 1]", style: { "background-color": "#f1f2f6", "border-style": "dotted", "color": "#5b6478" } },
        { selector: "node.selected", style: { "background-color": "#2457c5", "color": "#fff", "border-width": 3 } },
        { selector: "node.dim, edge.dim", style: { "opacity": 0.18 } },
        { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", "width": "data(width)",
          "line-color": "#9aa6bf", "target-arrow-color": "#9aa6bf", "label": "data(label)", "font-size": 9,
          "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 0.85, "color": "#5b6478" } },
        { selector: "edge[more = 1]", style: { "line-style": "dotted", "width": 1 } },
        { selector: "edge.hot", style: { "line-color": "#2457c5", "target-arrow-color": "#2457c5", "color": "#2457c5" } }
      ],
      layout: { name: "dagre", rankDir: "LR", nodeSep: 10, rankSep: 110, edgeSep: 8, ranker: "network-simplex", fit: true, padding: 16, animate: false }
    });
    cy.on("tap", "node", function (evt) {
      var name = evt.target.data("name");
      if (!name) { state.mode = "focus"; draw(); return; }
      state.selected = name;
      if (state.mode === "focus") state.focus = name;
      refresh(state.mode === "focus");
    });
    cy.on("tap", "edge", function (evt) {
      var id = evt.target.id();
      if (id.indexOf("e:") === 0) { var pair = id.slice(2).split(">"); state.selected = pair[0]; refresh(false); showEdge(pair[0], pair[1]); }
    });
    lists(view);
    highlight();
    details();
    var status = document.getElementById("status");
    status.textContent = data.domains.length + " domains, " + data.edges.length + " hand-overs between domains; " +
      (state.mode === "all" ? "showing all" : "showing " + state.focus + " and " + (view.names.length - 1) + " neighbour(s)" +
       (view.extra.length ? " (" + view.extra.map(function (x) { return x.count + " more " + x.side; }).join(", ") + " aggregated)" : ""));
    document.getElementById("mode-all").disabled = state.mode === "all" || data.domains.length > (config.allLimit || 150);
    document.getElementById("mode-focus").disabled = state.mode === "focus";
    document.body.dataset.mode = state.mode;
    document.body.dataset.rendered = "1";
    document.body.dataset.renderMs = String(Math.round(performance.now()));
    document.body.dataset.drawMs = String(Math.round(performance.now() - started));
  }

  function refresh(redraw) {
    if (redraw) { draw(); return; }
    highlight(); details(); lists(null);
  }

  function highlight() {
    if (!cy) return;
    var f = state.filter;
    cy.elements().removeClass("selected dim hot");
    if (state.selected) {
      var node = cy.getElementById("d:" + state.selected);
      node.addClass("selected");
      node.connectedEdges().addClass("hot");
    }
    if (f) {
      cy.nodes().forEach(function (n) { if (n.data("name") && !matches(byName[n.data("name")] || { name: n.data("name") }, f)) n.addClass("dim"); });
    }
  }

  function matches(d, f) {
    return [d.name, d.owner, d.slack].some(function (v) { return v && v.toLowerCase().indexOf(f) >= 0; });
  }

  // -- the lists under the graph (readable without the canvas; the tests read them) ------
  var lastView = null;
  function lists(view) {
    view = view || lastView;
    lastView = view;
    var domains = document.querySelector("#domain-list tbody"), edges = document.querySelector("#edge-list tbody");
    domains.textContent = ""; edges.textContent = "";
    view.names.forEach(function (n) {
      var d = byName[n] || { name: n, owner: "?", slack: "?", models: 0 };
      var tr = el("tr", null, { "data-domain": n });
      if (n === state.selected) tr.className = "selected";
      var name = el("td"); name.appendChild(link(n, "#" + n));
      name.firstChild.addEventListener("click", function (ev) { ev.preventDefault(); select(n); });
      tr.appendChild(name); tr.appendChild(el("td", d.owner)); tr.appendChild(el("td", d.slack));
      tr.appendChild(el("td", d.models)); tr.appendChild(el("td", (inn[n] || []).length + " / " + (out[n] || []).length));
      if (!state.filter || matches(d, state.filter)) domains.appendChild(tr);
    });
    view.edges.forEach(function (e) {
      var tr = el("tr", null, { "data-upstream": e.upstream, "data-downstream": e.downstream });
      tr.appendChild(el("td", e.upstream + " \u2192 " + e.downstream));
      tr.appendChild(el("td", e.models.join(", ")));
      tr.appendChild(el("td", e.sensors));
      edges.appendChild(tr);
    });
  }

  function select(name) {
    if (!byName[name]) return;
    state.selected = name;
    if (state.mode === "focus" && state.focus !== name) { state.focus = name; draw(); return; }
    refresh(false);
  }

  // -- the selected domain ---------------------------------------------------------------
  function details() {
    var box = document.getElementById("details");
    box.textContent = "";
    var d = byName[state.selected];
    if (!d) { box.appendChild(el("p", "Click a domain to see its pipelines and the models other domains read.", { class: "muted" })); return; }
    box.appendChild(el("h2", d.name, { id: "details-name" }));
    var facts = el("table", null, { class: "facts" });
    [["owner", d.owner], ["Slack", d.slack], ["models", d.models + " (" + d.public + " public)"], ["project", d.project],
     ["published", (d.published_at || "") + (d.label ? " (" + d.label + ")" : "")]].forEach(function (row) {
      var tr = el("tr"); tr.appendChild(el("th", row[0])); tr.appendChild(el("td", row[1])); facts.appendChild(tr);
    });
    box.appendChild(facts);
    if (d.description) box.appendChild(el("p", d.description, { class: "muted" }));
    box.appendChild(el("h3", "Pipelines"));
    var pl = el("table", null, { id: "details-pipelines" });
    d.pipelines.forEach(function (p) {
      var tr = el("tr"); var td = el("td"); td.appendChild(link(p.dag_id, fill(config.dagUrl, { dag_id: p.dag_id }), true));
      tr.appendChild(td); tr.appendChild(el("td", p.schedule, { class: "mono" })); tr.appendChild(el("td", p.models + " models, " + p.sensors + " sensors"));
      pl.appendChild(tr);
    });
    box.appendChild(pl);
    var readers = {};
    (out[d.name] || []).forEach(function (e) { e.models.forEach(function (m) { (readers[m] = readers[m] || []).push(e.downstream); }); });
    var names = Object.keys(readers).sort();
    box.appendChild(el("h3", "Models other domains read (" + names.length + ")"));
    var rl = el("table", null, { id: "details-read" });
    names.forEach(function (m) {
      var tr = el("tr", null, { "data-model": m }); var td = el("td");
      td.appendChild(link(m, fill(config.modelUrl, { domain: d.name, model: m })));
      tr.appendChild(td); tr.appendChild(el("td", readers[m].join(", "))); rl.appendChild(tr);
    });
    box.appendChild(rl);
    var reads = inn[d.name] || [];
    box.appendChild(el("h3", "Reads from (" + reads.length + " domains)"));
    var ul = el("table", null, { id: "details-reads" });
    reads.forEach(function (e) {
      var tr = el("tr"); tr.appendChild(el("td", e.upstream)); var td = el("td");
      e.models.forEach(function (m, i) { if (i) td.appendChild(document.createTextNode(", ")); td.appendChild(link(m, fill(config.modelUrl, { domain: e.upstream, model: m }))); });
      tr.appendChild(td); ul.appendChild(tr);
    });
    box.appendChild(ul);
  }

  function showEdge(up, down) {
    var e = (out[up] || []).filter(function (x) { return x.downstream === down; })[0];
    if (!e) return;
    var box = document.getElementById("details");
    var p = el("p", down + " reads " + e.models.length + " model(s) of " + up + " through " + e.sensors + " sensor(s): " + e.models.join(", "), { id: "details-edge" });
    box.insertBefore(p, box.firstChild);
  }

  // -- search: domains here, models on the server (or the models carried, offline) --------
  var results = document.getElementById("results");
  var pending = null;
  function search(text) {
    state.filter = text.trim().toLowerCase();
    results.textContent = "";
    refresh(false);
    if (!state.filter) return;
    data.domains.filter(function (d) { return matches(d, state.filter); }).slice(0, 12).forEach(function (d) {
      var li = el("li"); var a = link("domain " + d.name, "#" + d.name);
      a.addEventListener("click", function (ev) { ev.preventDefault(); select(d.name); });
      li.appendChild(a); li.appendChild(el("span", " \u2014 " + d.owner + ", " + d.models + " models", { class: "muted" }));
      results.appendChild(li);
    });
    if (config.searchUrl) {
      if (pending) clearTimeout(pending);
      pending = setTimeout(function () {
        fetch(config.searchUrl + "?q=" + encodeURIComponent(state.filter), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (found) { found.forEach(addModel); });
      }, 150);
    } else {
      var seen = {};
      data.edges.forEach(function (e) { e.models.forEach(function (m) {
        if (m.toLowerCase().indexOf(state.filter) >= 0 && !seen[e.upstream + "." + m]) { seen[e.upstream + "." + m] = 1; addModel({ domain: e.upstream, model: m, task_id: m }); }
      }); });
    }
  }
  function addModel(m) {
    var li = el("li", null, { class: "model-result" });
    li.appendChild(link("model " + m.domain + "." + m.task_id, fill(config.modelUrl, { domain: m.domain, model: m.task_id })));
    results.appendChild(li);
  }
  document.getElementById("search").addEventListener("input", function (ev) { search(ev.target.value); });
  document.getElementById("mode-all").addEventListener("click", function () { state.mode = "all"; draw(); });
  document.getElementById("mode-focus").addEventListener("click", function () { state.mode = "focus"; state.focus = state.selected || state.focus; draw(); });

  window.handoffMap = { select: select, state: state, cy: function () { return cy; } };
  draw();
})();
