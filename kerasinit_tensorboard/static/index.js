// The kerasinit dashboard: a TensorBoard dynamic plugin, loaded in an iframe
// whose <base> is this plugin's route prefix, so relative URLs reach
// kerasinit_tensorboard/plugin.py.
//
// Every string that comes from a log directory (run, layer, finding text) is
// put on the page with textContent, a DOM property, or canvas fillText,
// never as markup: layer names are user-controlled.

const METRICS = [
  ["dead_fraction", "dead fraction"],
  ["saturation_fraction", "saturation fraction"],
  ["grad_norm", "log10 gradient norm"],
  ["act_std", "activation std"],
];
const KINDS = [
  "dead_units",
  "saturation",
  "vanishing_gradients",
  "exploding_gradients",
  "nonfinite",
];
const REFRESH_MS = 30000;
const MAX_RUNS = 4;
// Colour ramp, dark blue (low) -> yellow (high), perceptually ordered.
const RAMP = [
  [48, 18, 59],
  [50, 101, 176],
  [33, 165, 133],
  [163, 205, 59],
  [250, 230, 40],
];
const MISSING = "#d9d9d9";

const state = {
  runs: [],
  selected: [],
  health: new Map(),
  findings: new Map(),
  highlight: null, // {run, layer}
  runFilter: "",
  kindFilter: "",
  detail: { run: "", layer: "" },
  loading: false,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child != null) node.append(child);
  }
  return node;
}

async function getJSON(route, params = {}) {
  const url = new URL(route, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    url.searchParams.set(key, value);
  }
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.error || `${route}: HTTP ${response.status}`);
  }
  return body;
}

// -- colour and number formatting -------------------------------------------

function colour(t) {
  if (!Number.isFinite(t)) return MISSING;
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const c = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function transformed(value, transform) {
  if (value == null) return null;
  if (transform === "log10") return value > 0 ? Math.log10(value) : -Infinity;
  return value;
}

function fmt(value) {
  if (value == null) return "n/a";
  if (value === -Infinity) return "-inf";
  if (value === 0) return "0";
  const a = Math.abs(value);
  return a >= 1e4 || a < 1e-3 ? value.toExponential(2) : value.toPrecision(3);
}

// A fixed range for fractions; for the others, one range over every shown
// run, so that two runs side by side are coloured on the same scale.
function metricRange(metric, transform) {
  if (metric.endsWith("_fraction")) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const run of state.selected) {
    const health = state.health.get(run);
    if (!health || health.error) continue;
    for (const row of health.metrics[metric].values) {
      for (const v of row) {
        const t = transformed(v, transform);
        if (Number.isFinite(t)) {
          lo = Math.min(lo, t);
          hi = Math.max(hi, t);
        }
      }
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (metric === "act_std") lo = Math.min(lo, 0);
  if (hi - lo < 1e-12) hi = lo + 1;
  return [lo, hi];
}

// -- tooltip -----------------------------------------------------------------

const tooltip = el("div", { class: "ki-tooltip", role: "tooltip" });

function showTooltip(event, lines) {
  tooltip.replaceChildren(...lines.map((line) => el("div", { text: line })));
  tooltip.style.display = "block";
  const x = Math.min(event.clientX + 12, window.innerWidth - 260);
  tooltip.style.left = `${x}px`;
  tooltip.style.top = `${event.clientY + 12}px`;
}

function hideTooltip() {
  tooltip.style.display = "none";
}

// -- health map --------------------------------------------------------------

// Cells sized so that a run's four heatmaps fit its share of the page width
// (runs side by side), with a readable minimum that scrolls when exceeded.
function cellSize(layers, steps) {
  const runs = Math.max(1, state.selected.length);
  const perRun = (document.documentElement.clientWidth - 32) / runs - 16;
  const perMap = (perRun - 200) / METRICS.length - 14;
  const h = Math.max(6, Math.min(18, Math.floor(480 / Math.max(1, layers))));
  const w = Math.max(2, Math.min(24, Math.floor(perMap / Math.max(1, steps))));
  return [w, h];
}

function drawHeatmap(canvas, values, transform, range, highlightRow) {
  const [w, h] = [Number(canvas.dataset.cellWidth), Number(canvas.dataset.cellHeight)];
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const [lo, hi] = range;
  values.forEach((row, r) => {
    row.forEach((v, c) => {
      const t = transformed(v, transform);
      ctx.fillStyle =
        t === -Infinity ? colour(0) : colour(t == null ? NaN : (t - lo) / (hi - lo));
      ctx.fillRect(c * w, r * h, w, h);
    });
  });
  if (highlightRow != null && highlightRow >= 0) {
    ctx.strokeStyle = "#ff2d55";
    ctx.lineWidth = 2;
    ctx.strokeRect(1, highlightRow * h + 1, canvas.width - 2, h - 2);
  }
}

function legend(range, transform, label) {
  const canvas = el("canvas", { class: "ki-legend", width: 120, height: 8 });
  const ctx = canvas.getContext("2d");
  for (let x = 0; x < 120; x++) {
    ctx.fillStyle = colour(x / 119);
    ctx.fillRect(x, 0, 1, 8);
  }
  const lo = transform === "log10" ? `1e${range[0].toFixed(1)}` : fmt(range[0]);
  const hi = transform === "log10" ? `1e${range[1].toFixed(1)}` : fmt(range[1]);
  return el(
    "div",
    { class: "ki-legend-box", title: `colour scale of ${label}` },
    el("span", { text: lo }),
    canvas,
    el("span", { text: hi }),
    el("span", { class: "ki-missing", title: "no data" }),
  );
}

function healthPanel(run) {
  const health = state.health.get(run);
  const panel = el("section", { class: "ki-run", dataset: { run } });
  panel.append(el("h3", { class: "ki-run-name", text: run }));
  if (!health) {
    panel.append(el("p", { class: "ki-muted", text: "Loading…" }));
    return panel;
  }
  if (health.error) {
    panel.append(el("p", { class: "ki-error", text: health.error }));
    return panel;
  }
  if (health.thinned) {
    panel.append(
      el(
        "p",
        { class: "ki-notice", dataset: { thinned: "true" } },
        `TensorBoard kept ${health.points} of this run's ${health.events} ` +
          "logging events, so the health map skips some of them. Restart " +
          "TensorBoard with ",
        el("code", { text: health.fix }),
        " to see every event. Findings are complete either way.",
      ),
    );
  }
  const layers = health.layers;
  const steps = health.steps;
  const [w, h] = cellSize(layers.length, steps.length);
  const highlightRow =
    state.highlight && state.highlight.run === run
      ? layers.indexOf(state.highlight.layer)
      : -1;

  const labels = el("div", { class: "ki-labels" });
  labels.style.gridTemplateRows = `repeat(${layers.length}, ${h}px)`;
  layers.forEach((layer, i) => {
    const label = el("div", {
      class: i === highlightRow ? "ki-label ki-highlight" : "ki-label",
      text: layer,
      title: layer,
      dataset: { layer },
      onclick: () => openDetail(run, layer),
    });
    label.style.fontSize = `${Math.min(12, h - 1)}px`;
    labels.append(label);
  });

  const grid = el("div", { class: "ki-map" }, el("div", { class: "ki-map-labels" }, el("div", { class: "ki-map-title", text: "layer" }), labels));
  for (const [metric, fallback] of METRICS) {
    const spec = health.metrics[metric];
    const label = spec ? spec.label : fallback;
    const range = metricRange(metric, spec.transform);
    const canvas = el("canvas", {
      class: "ki-heatmap",
      width: Math.max(1, steps.length * w),
      height: Math.max(1, layers.length * h),
      dataset: {
        run,
        metric,
        layers: String(layers.length),
        steps: String(steps.length),
        cellWidth: String(w),
        cellHeight: String(h),
      },
      "aria-label": `${label} heatmap`,
    });
    drawHeatmap(canvas, spec.values, spec.transform, range, highlightRow);
    canvas.addEventListener("mousemove", (event) => {
      const box = canvas.getBoundingClientRect();
      const c = Math.floor((event.clientX - box.left) / w);
      const r = Math.floor((event.clientY - box.top) / h);
      if (r < 0 || r >= layers.length || c < 0 || c >= steps.length) {
        hideTooltip();
        return;
      }
      const v = spec.values[r][c];
      const t = transformed(v, spec.transform);
      showTooltip(event, [
        `layer: ${layers[r]}`,
        `step: ${steps[c]}`,
        spec.transform === "log10"
          ? `${label}: ${fmt(t)} (norm ${fmt(v)})`
          : `${label}: ${fmt(v)}`,
      ]);
    });
    canvas.addEventListener("mouseleave", hideTooltip);
    canvas.addEventListener("click", (event) => {
      const box = canvas.getBoundingClientRect();
      const r = Math.floor((event.clientY - box.top) / h);
      if (r >= 0 && r < layers.length) openDetail(run, layers[r]);
    });
    const figure = el(
      "figure",
      { class: "ki-metric" },
      el("figcaption", { text: label, title: label }),
      canvas,
      legend(range, spec.transform, label),
    );
    // The legend follows the heatmap's width, so the four maps fit the run.
    figure.style.width = `${Math.max(72, canvas.width)}px`;
    grid.append(figure);
  }
  const stepRange = steps.length
    ? `steps ${steps[0]} … ${steps[steps.length - 1]} (${steps.length} logging events shown, left to right)`
    : "no logging events yet";
  panel.append(grid, el("p", { class: "ki-muted", text: stepRange }));
  return panel;
}

// -- findings ----------------------------------------------------------------

function findingsView() {
  const box = el("section", { class: "ki-findings" });
  box.append(el("h2", { text: "Findings" }));
  const runSelect = el("select", {
    class: "ki-filter-run",
    "aria-label": "filter findings by run",
    onchange: (e) => {
      state.runFilter = e.target.value;
      renderFindingsBody(tbody);
    },
  });
  runSelect.append(el("option", { value: "", text: "all shown runs" }));
  for (const run of state.selected) {
    const option = el("option", { text: run });
    option.value = run;
    option.selected = run === state.runFilter;
    runSelect.append(option);
  }
  const kindSelect = el("select", {
    class: "ki-filter-kind",
    "aria-label": "filter findings by kind",
    onchange: (e) => {
      state.kindFilter = e.target.value;
      renderFindingsBody(tbody);
    },
  });
  kindSelect.append(el("option", { value: "", text: "all kinds" }));
  for (const kind of KINDS) {
    const option = el("option", { text: kind.replace(/_/g, " ") });
    option.value = kind;
    option.selected = kind === state.kindFilter;
    kindSelect.append(option);
  }
  box.append(
    el("div", { class: "ki-controls" }, el("label", { text: "Run " }, runSelect), el("label", { text: "Kind " }, kindSelect)),
  );
  const table = el("table", { class: "ki-table" });
  const head = el("tr");
  for (const column of ["run", "step", "layer", "kind", "value", "threshold", "fix"]) {
    head.append(el("th", { text: column }));
  }
  table.append(el("thead", {}, head));
  const tbody = el("tbody");
  table.append(tbody);
  box.append(table);
  renderFindingsBody(tbody);
  return box;
}

function renderFindingsBody(tbody) {
  const rows = [];
  for (const run of state.selected) {
    if (state.runFilter && run !== state.runFilter) continue;
    const found = state.findings.get(run);
    if (!found || found.error) continue;
    for (const f of found.findings) {
      if (state.kindFilter && f.kind !== state.kindFilter) continue;
      const active =
        state.highlight && state.highlight.run === run && state.highlight.layer === f.layer;
      const row = el(
        "tr",
        {
          class: active ? "ki-finding ki-highlight" : "ki-finding",
          dataset: { run, layer: f.layer, kind: f.kind },
          title: f.message,
          tabindex: 0,
          onclick: () => highlight(run, f.layer),
          onkeydown: (e) => {
            if (e.key === "Enter") highlight(run, f.layer);
          },
        },
        el("td", { text: run }),
        el("td", { text: f.step == null ? "" : String(f.step) }),
        el("td", { class: "ki-layer", text: f.layer }),
        el("td", { class: `ki-kind ki-${f.severity}`, text: f.kind }),
        el("td", { text: fmt(f.value) }),
        el("td", { text: fmt(f.threshold) }),
        el("td", { text: f.advice }),
      );
      rows.push(row);
    }
  }
  if (!rows.length) {
    const empty = el("td", { colspan: 7, class: "ki-muted", text: "No findings for this selection: every monitored layer stayed within its thresholds." });
    rows.push(el("tr", { class: "ki-no-findings" }, empty));
  }
  tbody.replaceChildren(...rows);
  tbody.dataset.count = String(rows.filter((r) => r.classList.contains("ki-finding")).length);
}

function highlight(run, layer) {
  state.highlight = { run, layer };
  if (layer) state.detail = { run, layer };
  renderMain();
  const target = document.querySelector(`.ki-run[data-run="${CSS.escape(run)}"]`);
  if (target) target.scrollIntoView({ block: "nearest" });
}

// -- layer detail ------------------------------------------------------------

function openDetail(run, layer) {
  state.detail = { run, layer };
  renderMain();
}

async function loadDetail() {
  const box = document.querySelector(".ki-detail-body");
  if (!box) return;
  const { run, layer } = state.detail;
  if (!run || !layer) {
    box.replaceChildren(el("p", { class: "ki-muted", text: "Pick a layer (or click a row of the health map)." }));
    return;
  }
  box.replaceChildren(el("p", { class: "ki-muted", text: "Loading…" }));
  try {
    const detail = await getJSON("layer", { run, layer });
    if (state.detail.run !== run || state.detail.layer !== layer) return;
    box.replaceChildren(
      distribution("activation distribution over steps", detail.activations),
      gradNormChart(detail.grad_norm),
    );
    box.dataset.layer = layer;
  } catch (error) {
    box.replaceChildren(el("p", { class: "ki-error", text: error.message }));
  }
}

function detailView() {
  const box = el("section", { class: "ki-detail" });
  box.append(el("h2", { text: "Layer detail" }));
  const runSelect = el("select", { class: "ki-detail-run", "aria-label": "run" });
  const layerSelect = el("select", { class: "ki-detail-layer", "aria-label": "layer" });
  const fillLayers = () => {
    const info = state.runs.find((r) => r.run === runSelect.value);
    layerSelect.replaceChildren(el("option", { value: "", text: "pick a layer" }));
    for (const layer of info ? info.layers : []) {
      const option = el("option", { text: layer });
      option.value = layer;
      option.selected = layer === state.detail.layer;
      layerSelect.append(option);
    }
  };
  for (const run of state.selected) {
    const option = el("option", { text: run });
    option.value = run;
    option.selected = run === state.detail.run;
    runSelect.append(option);
  }
  runSelect.addEventListener("change", () => {
    fillLayers();
    state.detail = { run: runSelect.value, layer: "" };
    loadDetail();
  });
  layerSelect.addEventListener("change", () => openDetail(runSelect.value, layerSelect.value));
  fillLayers();
  box.append(
    el("div", { class: "ki-controls" }, el("label", { text: "Run " }, runSelect), el("label", { text: "Layer " }, layerSelect)),
    el("div", { class: "ki-detail-body" }),
  );
  return box;
}

function distribution(title, hist) {
  const fig = el("figure", { class: "ki-dist" }, el("figcaption", { text: title }));
  if (!hist.steps.length) {
    fig.append(el("p", { class: "ki-muted", text: "No histograms for this layer." }));
    return fig;
  }
  const rows = hist.density[0].length;
  const w = Math.max(4, Math.min(24, Math.floor(480 / hist.steps.length)));
  const h = 5;
  const canvas = el("canvas", {
    class: "ki-dist-map",
    width: hist.steps.length * w,
    height: rows * h,
    dataset: { steps: String(hist.steps.length), bins: String(rows) },
  });
  const ctx = canvas.getContext("2d");
  hist.density.forEach((column, c) => {
    const peak = Math.max(...column) || 1;
    column.forEach((d, r) => {
      // Low values at the bottom, like a y axis.
      ctx.fillStyle = colour(Math.sqrt(d / peak));
      ctx.fillRect(c * w, (rows - 1 - r) * h, w, h);
    });
  });
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const c = Math.floor((event.clientX - box.left) / w);
    const r = rows - 1 - Math.floor((event.clientY - box.top) / h);
    if (c < 0 || c >= hist.steps.length || r < 0 || r >= rows) return hideTooltip();
    showTooltip(event, [
      `step: ${hist.steps[c]}`,
      `value: ${fmt(hist.edges[r])} … ${fmt(hist.edges[r + 1])}`,
      `share of outputs: ${(100 * hist.density[c][r]).toFixed(1)}%`,
    ]);
  });
  canvas.addEventListener("mouseleave", hideTooltip);
  fig.append(
    el(
      "div",
      { class: "ki-axes" },
      el("div", { class: "ki-yaxis" }, el("span", { text: fmt(hist.edges[hist.edges.length - 1]) }), el("span", { text: fmt(hist.edges[0]) })),
      canvas,
    ),
    el("p", { class: "ki-muted", text: `x: steps ${hist.steps[0]} … ${hist.steps[hist.steps.length - 1]}; colour: share of the step's outputs in each value bin (square-root scale)` }),
  );
  return fig;
}

function gradNormChart(points) {
  const fig = el("figure", { class: "ki-line" }, el("figcaption", { text: "gradient norm over steps (log scale)" }));
  const finite = points.filter(([, v]) => v != null && v > 0);
  if (!finite.length) {
    fig.append(el("p", { class: "ki-muted", text: "No positive, finite gradient norm for this layer (no trainable weights, no targets in the probe, or gradients that are exactly zero)." }));
    return fig;
  }
  const W = 480;
  const H = 160;
  const pad = 6;
  const canvas = el("canvas", { class: "ki-line-chart", width: W, height: H, dataset: { points: String(finite.length) } });
  const ctx = canvas.getContext("2d");
  const xs = finite.map(([s]) => s);
  const ys = finite.map(([, v]) => Math.log10(v));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const px = (s) => pad + ((s - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const py = (y) => H - pad - ((y - y0) / (y1 - y0)) * (H - 2 * pad);
  ctx.strokeStyle = "#3367d6";
  ctx.lineWidth = 2;
  ctx.beginPath();
  finite.forEach(([s], i) => (i ? ctx.lineTo(px(s), py(ys[i])) : ctx.moveTo(px(s), py(ys[i]))));
  ctx.stroke();
  ctx.fillStyle = "#3367d6";
  finite.forEach(([s], i) => ctx.fillRect(px(s) - 2, py(ys[i]) - 2, 4, 4));
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left;
    let best = 0;
    finite.forEach(([s], i) => {
      if (Math.abs(px(s) - x) < Math.abs(px(finite[best][0]) - x)) best = i;
    });
    showTooltip(event, [`step: ${finite[best][0]}`, `gradient norm: ${fmt(finite[best][1])}`]);
  });
  canvas.addEventListener("mouseleave", hideTooltip);
  fig.append(
    el(
      "div",
      { class: "ki-axes" },
      el("div", { class: "ki-yaxis" }, el("span", { text: `1e${y1.toFixed(1)}` }), el("span", { text: `1e${y0.toFixed(1)}` })),
      canvas,
    ),
    el("p", { class: "ki-muted", text: `x: steps ${x0} … ${x1}` }),
  );
  return fig;
}

// -- runs and page -----------------------------------------------------------

function runsView() {
  const box = el("section", { class: "ki-runs" });
  box.append(el("h2", { text: "Runs" }));
  const list = el("div", { class: "ki-run-list" });
  for (const info of state.runs) {
    const input = el("input", { type: "checkbox" });
    input.checked = state.selected.includes(info.run);
    input.dataset.run = info.run;
    input.addEventListener("change", () => {
      if (input.checked) state.selected = [...state.selected, info.run].slice(-MAX_RUNS);
      else state.selected = state.selected.filter((r) => r !== info.run);
      state.selected = state.runs.map((r) => r.run).filter((r) => state.selected.includes(r));
      refresh();
    });
    const summary = info.error
      ? info.error
      : `${info.layers.length} layers, ${info.events} events, ${info.findings} finding${info.findings === 1 ? "" : "s"}`;
    list.append(el("label", { class: "ki-run-choice" }, input, el("span", { class: "ki-run-label", text: info.run }), el("span", { class: "ki-muted", text: ` — ${summary}` })));
  }
  box.append(list, el("p", { class: "ki-muted", text: `Pick up to ${MAX_RUNS} runs; they are drawn side by side on shared colour scales.` }));
  return box;
}

function emptyState() {
  return el(
    "section",
    { class: "ki-empty" },
    el("h2", { text: "No kerasinit data in this log directory" }),
    el("p", { text: "No run has a kerasinit health record yet. Add the health monitor to training, and point TensorBoard at the same directory:" }),
    el(
      "pre",
      {},
      el("code", {
        text:
          'monitor = kerasinit.callbacks.HealthMonitor(log_dir="runs/exp1", probe=(x_val[:256], y_val[:256]))\n' +
          "model.fit(x, y, epochs=5, callbacks=[monitor])",
      }),
    ),
    el("p", { class: "ki-muted", text: "This page refreshes itself every 30 seconds and when TensorBoard reloads." }),
  );
}

let root;

function renderMain() {
  const scroll = window.scrollY;
  if (!state.runs.length) {
    root.replaceChildren(emptyState());
    root.dataset.state = "empty";
    return;
  }
  const maps = el("div", { class: "ki-maps" });
  maps.style.gridTemplateColumns = `repeat(${Math.max(1, state.selected.length)}, minmax(0, 1fr))`;
  for (const run of state.selected) maps.append(healthPanel(run));
  if (!state.selected.length) maps.append(el("p", { class: "ki-muted", text: "Pick a run above." }));
  const detail = detailView();
  root.replaceChildren(
    runsView(),
    el("section", { class: "ki-health" }, el("h2", { text: "Health map" }), el("p", { class: "ki-muted", text: "Rows: layers in model order. Columns: logging steps. Hover a cell for its value; click a row for its detail." }), maps),
    findingsView(),
    detail,
  );
  root.dataset.state = state.loading ? "loading" : "ready";
  loadDetail();
  window.scrollTo(0, scroll);
}

async function refresh() {
  if (state.loading) return;
  state.loading = true;
  try {
    const { runs } = await getJSON("runs");
    state.runs = runs;
    const names = runs.map((r) => r.run);
    state.selected = state.selected.filter((r) => names.includes(r));
    if (!state.selected.length) state.selected = names.slice(0, 2);
    if (!state.detail.run || !names.includes(state.detail.run)) {
      state.detail = { run: state.selected[0] || "", layer: "" };
    }
    if (state.runFilter && !state.selected.includes(state.runFilter)) state.runFilter = "";
    await Promise.all(
      state.selected.map(async (run) => {
        const [health, findings] = await Promise.all([
          getJSON("health", { run }).catch((e) => ({ error: e.message })),
          getJSON("findings", { run }).catch((e) => ({ error: e.message })),
        ]);
        state.health.set(run, health);
        state.findings.set(run, findings);
      }),
    );
  } catch (error) {
    state.loading = false;
    root.replaceChildren(el("p", { class: "ki-error", text: `Could not load kerasinit data: ${error.message}` }));
    root.dataset.state = "error";
    return;
  }
  state.loading = false;
  renderMain();
}

export async function render() {
  const css = el("link", { rel: "stylesheet", href: new URL("style.css", document.baseURI).href });
  document.head.append(css);
  root = el("main", { class: "ki-root", dataset: { state: "loading" } });
  document.body.append(root, tooltip);
  // TensorBoard's reload does not reach a dynamic plugin's iframe, so poll
  // modestly, and at once when the tab becomes visible again.
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  await refresh();
}
