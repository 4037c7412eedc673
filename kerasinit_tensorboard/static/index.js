// The kerasinit dashboard: a TensorBoard dynamic plugin, loaded in an iframe
// whose <base> is this plugin's route prefix, so relative URLs reach
// kerasinit_tensorboard/plugin.py.
//
// Every string that comes from a log directory (run, layer, verdict text) is
// put on the page with textContent, a DOM property, or canvas fillText,
// never as markup: layer names are user-controlled.
//
// The metrics and severities come from the /runs route (the schema), never
// from a list kept here.

const REFRESH_MS = 30000;
const MAX_SELECTED = 4;
// Colour ramp, dark purple (low) -> yellow (high), perceptually ordered.
const RAMP = [
  [48, 18, 59],
  [50, 101, 176],
  [33, 165, 133],
  [163, 205, 59],
  [250, 230, 40],
];
// Cells that are not a value on the scale, each distinct from the ramp.
const SPECIAL = {
  missing: { colour: "#d9d9d9", label: "not measured" },
  underflow: { colour: "#000000", label: "0 (underflow)" },
  overflow: { colour: "#ff00ff", label: "+inf (overflow)" },
  nan: { colour: "#e6194b", label: "NaN" },
};
// One colour per selected run, in selection order, for lines and legends.
const RUN_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const HIGHLIGHT = "rgba(255, 45, 85, 0.18)";
const HIGHLIGHT_EDGE = "#ff2d55";

const state = {
  runs: [],
  spec: { metrics: {}, severities: [] },
  selected: [],
  userSelected: false,
  sort: { key: "severity", dir: -1 },
  filter: "",
  health: new Map(),
  verdicts: new Map(),
  step: 0,
  highlight: null, // {run, layers, key}
  expanded: new Set(),
  detail: { run: "", layer: "", step: null },
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

// -- values, colours, formatting ---------------------------------------------

// The routes send non-finite statistics as strings (JSON has no NaN).
function num(value) {
  if (value == null) return null;
  if (value === "nan") return NaN;
  if (value === "inf") return Infinity;
  if (value === "-inf") return -Infinity;
  return value;
}

// What a value is on a scale: a position in [0, 1], or a special cell.
function classify(value, scale, range) {
  const v = num(value);
  if (v == null) return { special: "missing" };
  if (Number.isNaN(v)) return { special: "nan" };
  if (v === Infinity) return { special: "overflow" };
  if (v === -Infinity) return { special: "nan" };
  if (scale === "log") {
    if (v <= 0) return { special: "underflow" };
    const [lo, hi] = range;
    return { t: (Math.log10(v) - lo) / (hi - lo) };
  }
  return { t: v };
}

function rampColour(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const c = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function cellColour(value, scale, range) {
  const c = classify(value, scale, range);
  return c.special ? SPECIAL[c.special].colour : rampColour(c.t);
}

function fmt(value) {
  const v = num(value);
  if (v == null) return "n/a";
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+inf";
  if (v === -Infinity) return "-inf";
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(3);
}

function decade(x) {
  return Number.isInteger(x) ? `1e${x}` : `1e${x.toFixed(1)}`;
}

// One log10 range per metric over every selected run, so that runs side
// by side, and lines in one chart, are on the same scale.
function sharedRange(metric) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const run of state.selected) {
    const health = state.health.get(run);
    if (!health || health.error || !health.metrics[metric]) continue;
    for (const row of health.metrics[metric].values) {
      for (const value of row) {
        const v = num(value);
        if (v != null && Number.isFinite(v) && v > 0) {
          lo = Math.min(lo, Math.log10(v));
          hi = Math.max(hi, Math.log10(v));
        }
      }
    }
  }
  if (!Number.isFinite(lo)) return [-1, 1];
  lo = Math.floor(lo);
  hi = Math.ceil(hi);
  if (hi - lo < 1) hi = lo + 1;
  return [lo, hi];
}

function runColour(run) {
  const i = state.selected.indexOf(run);
  return RUN_COLOURS[(i < 0 ? 0 : i) % RUN_COLOURS.length];
}

function severityRank(severity) {
  return severity ? state.spec.severities.indexOf(severity) : -1;
}

function kindText(kind) {
  return kind.replace(/_/g, " ");
}

// -- tooltip -----------------------------------------------------------------

const tooltip = el("div", { class: "ki-tooltip", role: "tooltip" });

function showTooltip(event, lines) {
  tooltip.replaceChildren(...lines.map((line) => el("div", { text: line })));
  tooltip.style.display = "block";
  const x = Math.min(event.clientX + 12, window.innerWidth - 280);
  tooltip.style.left = `${x}px`;
  tooltip.style.top = `${event.clientY + 12}px`;
}

function hideTooltip() {
  tooltip.style.display = "none";
}

// -- runs overview -----------------------------------------------------------

const COLUMNS = [
  ["run", "run", (r) => r.run],
  ["layers", "layers", (r) => (r.layers ? r.layers.length : -1)],
  ["events", "events", (r) => r.events ?? -1],
  ["step", "last step", (r) => r.step ?? -1],
  ["severity", "worst", (r) => severityRank(r.severity)],
  ["verdicts", "verdicts", (r) => (r.verdicts ? r.verdicts.length : -1)],
];

function verdictSummary(info) {
  if (info.error) return info.error;
  if (!info.verdicts.length) return "healthy: every layer within its thresholds";
  return info.verdicts
    .map((v) => `${kindText(v.kind)} from ${v.first_layer || "the model"}${v.span > 1 ? ` (${v.span} layers)` : ""}`)
    .join("; ");
}

function visibleRuns() {
  const needle = state.filter.trim().toLowerCase();
  const column = COLUMNS.find(([key]) => key === state.sort.key) || COLUMNS[4];
  const rows = state.runs.filter(
    (r) => !needle || r.run.toLowerCase().includes(needle) || verdictSummary(r).toLowerCase().includes(needle),
  );
  rows.sort((a, b) => {
    const x = column[2](a);
    const y = column[2](b);
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return order * state.sort.dir || a.run.localeCompare(b.run);
  });
  return rows;
}

function toggleRun(run) {
  state.userSelected = true;
  if (state.selected.includes(run)) {
    state.selected = state.selected.filter((r) => r !== run);
  } else {
    state.selected = [...state.selected, run].slice(-MAX_SELECTED);
  }
  if (state.highlight && !state.selected.includes(state.highlight.run)) state.highlight = null;
  renderOverviewBody();
  loadSelected();
}

let overviewBody;
let overviewCount;

function overviewView() {
  const box = el("section", { class: "ki-overview" });
  const filter = el("input", {
    type: "search",
    class: "ki-run-filter",
    placeholder: "filter runs by name or verdict",
    "aria-label": "filter runs by name or verdict",
  });
  filter.value = state.filter;
  filter.addEventListener("input", () => {
    state.filter = filter.value;
    renderOverviewBody();
  });
  filter.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      const first = overviewBody.querySelector("tr");
      if (first) first.focus();
      e.preventDefault();
    }
  });
  overviewCount = el("span", { class: "ki-muted ki-run-count" });
  const head = el("tr");
  head.append(el("th", { class: "ki-swatch-col", text: "" }));
  for (const [key, label] of COLUMNS) {
    const active = state.sort.key === key;
    const arrow = active ? (state.sort.dir < 0 ? " ▼" : " ▲") : "";
    const button = el("button", {
      class: "ki-sort",
      type: "button",
      text: label + arrow,
      dataset: { sort: key },
      onclick: () => {
        state.sort = { key, dir: active ? -state.sort.dir : key === "run" ? 1 : -1 };
        box.replaceWith(overviewView());
      },
    });
    head.append(
      el("th", { "aria-sort": active ? (state.sort.dir < 0 ? "descending" : "ascending") : "none" }, button),
    );
  }
  overviewBody = el("tbody");
  const table = el("table", { class: "ki-table ki-run-table", "aria-label": "runs" }, el("thead", {}, head), overviewBody);
  box.append(
    el("h2", { text: "Runs" }),
    el(
      "div",
      { class: "ki-controls" },
      filter,
      overviewCount,
    ),
    el("div", { class: "ki-run-scroll" }, table),
    el("p", {
      class: "ki-muted",
      text: `Click a row, or press Space or Enter on it, to show or hide the run below (up to ${MAX_SELECTED}; ↑ ↓ move between rows). The most severe runs are shown first.`,
    }),
  );
  renderOverviewBody();
  return box;
}

function renderOverviewBody() {
  if (!overviewBody) return;
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.run : null;
  const rows = visibleRuns().map((info) => {
    const selected = state.selected.includes(info.run);
    const swatch = el("span", { class: "ki-swatch" });
    if (selected) swatch.style.background = runColour(info.run);
    const row = el(
      "tr",
      {
        class: `ki-run-row${selected ? " ki-selected" : ""}`,
        tabindex: 0,
        "aria-selected": selected ? "true" : "false",
        dataset: { run: info.run, severity: info.severity || "none" },
        onclick: () => toggleRun(info.run),
        onkeydown: (e) => {
          if (e.key === " " || e.key === "Enter") {
            toggleRun(info.run);
            e.preventDefault();
          } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
            const next = e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
            if (next) next.focus();
            e.preventDefault();
          }
        },
      },
      el("td", {}, swatch),
      el("td", { class: "ki-run-label", text: info.run, title: info.run }),
      el("td", { text: info.layers ? String(info.layers.length) : "" }),
      el("td", { text: info.events == null ? "" : String(info.events) }),
      el("td", { text: info.step == null ? "" : String(info.step) }),
      el("td", {
        class: `ki-sev ki-sev-${info.severity || "none"}`,
        text: info.error ? "unreadable" : info.severity || "ok",
      }),
      el("td", { class: "ki-verdict-summary", text: verdictSummary(info), title: verdictSummary(info) }),
    );
    return row;
  });
  overviewBody.replaceChildren(...rows);
  overviewCount.textContent = `${rows.length} of ${state.runs.length} runs; ${state.selected.length} shown`;
  if (focused) {
    const again = overviewBody.querySelector(`tr[data-run="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

// -- depth profile -----------------------------------------------------------

// The column of a run's matrices to draw for the chosen step: the last
// logging event at or before it.
function columnAt(steps, step) {
  let best = -1;
  steps.forEach((s, i) => {
    if (s <= step) best = i;
  });
  return best;
}

function allSteps() {
  const steps = new Set();
  for (const run of state.selected) {
    const health = state.health.get(run);
    if (health && !health.error) health.steps.forEach((s) => steps.add(s));
  }
  return [...steps].sort((a, b) => a - b);
}

function profileView() {
  const box = el("section", { class: "ki-profile" });
  const steps = allSteps();
  box.append(el("h2", { text: "Depth profile" }));
  if (!steps.length) {
    box.append(el("p", { class: "ki-muted", text: "No statistics for the shown runs yet." }));
    return box;
  }
  if (!steps.includes(state.step)) state.step = steps[0];
  const slider = el("input", {
    type: "range",
    class: "ki-step-slider",
    min: 0,
    max: steps.length - 1,
    step: 1,
    "aria-label": "logging step",
  });
  slider.value = String(steps.indexOf(state.step));
  const label = el("span", { class: "ki-step-label" });
  const charts = el("div", { class: "ki-profile-charts" });
  const draw = () => {
    label.textContent = state.step === steps[0] ? `step ${state.step} (pre-flight)` : `step ${state.step}`;
    charts.replaceChildren(...Object.values(state.spec.metrics).map((spec) => profileChart(spec)));
  };
  slider.addEventListener("input", () => {
    state.step = steps[Number(slider.value)];
    draw();
  });
  const legend = el("div", { class: "ki-run-legend" });
  for (const run of state.selected) {
    const swatch = el("span", { class: "ki-swatch", dataset: { colour: runColour(run) } });
    swatch.style.background = runColour(run);
    legend.append(el("span", { class: "ki-legend-item", dataset: { run } }, swatch, el("span", { text: run })));
  }
  box.append(
    el("div", { class: "ki-controls" }, el("label", { text: "Step " }, slider), label),
    legend,
    charts,
    el("p", {
      class: "ki-muted",
      text:
        "x: layer index in model order (input side left); one line per shown run. On log axes a value of exactly 0 is drawn on the band " +
        "below the axis, NaN and infinity on the band above it: neither is dropped.",
    }),
  );
  draw();
  return box;
}

function profileChart(spec) {
  const W = 560;
  const H = 230;
  const left = 54;
  const right = 10;
  const top = 24;
  const band = 12;
  const bottom = 30;
  const plotTop = top + band + 4;
  const plotBottom = H - bottom - band - 4;
  const log = spec.scale === "log";
  const range = log ? sharedRange(spec.metric) : [0, 1];
  const depth = Math.max(
    2,
    ...state.selected.map((run) => {
      const h = state.health.get(run);
      return h && !h.error ? h.layers.length : 0;
    }),
  );
  const px = (i) => left + (i / (depth - 1)) * (W - left - right);
  const py = (t) => plotBottom - t * (plotBottom - plotTop);
  const canvas = el("canvas", {
    class: "ki-profile-chart",
    width: W,
    height: H,
    dataset: {
      metric: spec.metric,
      scale: spec.scale,
      step: String(state.step),
      nanBand: `${top},${top + band}`,
      zeroBand: `${plotBottom + 4},${plotBottom + 4 + band}`,
      plot: `${plotTop},${plotBottom}`,
    },
    "aria-label": `${spec.label} against depth`,
  });
  const ctx = canvas.getContext("2d");
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#212121";
  ctx.fillText(`${spec.label}${log ? " (log scale)" : ""}`, left, 14);
  // Axes and grid.
  ctx.strokeStyle = "#e0e0e0";
  ctx.fillStyle = "#616161";
  ctx.textAlign = "right";
  const ticks = log
    ? Array.from({ length: range[1] - range[0] + 1 }, (_, k) => range[0] + k).filter(
        (_, k, all) => all.length <= 8 || k % Math.ceil(all.length / 8) === 0,
      )
    : [0, 0.25, 0.5, 0.75, 1];
  for (const tick of ticks) {
    const y = py(log ? (tick - range[0]) / (range[1] - range[0]) : tick);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(W - right, y);
    ctx.stroke();
    ctx.fillText(log ? decade(tick) : String(tick), left - 4, y + 4);
  }
  ctx.fillStyle = "#f3f3f3";
  ctx.fillRect(left, top, W - left - right, band);
  ctx.fillRect(left, plotBottom + 4, W - left - right, band);
  ctx.fillStyle = "#616161";
  ctx.fillText("NaN/inf", left - 4, top + band - 2);
  if (log) ctx.fillText("0", left - 4, plotBottom + 4 + band - 2);
  ctx.textAlign = "center";
  const every = Math.max(1, Math.ceil(depth / 10));
  for (let i = 0; i < depth; i += every) ctx.fillText(String(i), px(i), H - 12);
  ctx.fillText("layer", (left + W) / 2, H - 1);
  // The highlighted verdict's layers, as a band over their indices.
  if (state.highlight) {
    const health = state.health.get(state.highlight.run);
    if (health && !health.error) {
      const idx = state.highlight.layers.map((l) => health.layers.indexOf(l)).filter((i) => i >= 0);
      if (idx.length) {
        const half = (W - left - right) / (depth - 1) / 2;
        const x0 = px(Math.min(...idx)) - half;
        const x1 = px(Math.max(...idx)) + half;
        ctx.fillStyle = HIGHLIGHT;
        ctx.fillRect(x0, top, x1 - x0, plotBottom + 4 + band - top);
        canvas.dataset.highlight = `${Math.ceil(x0)},${Math.floor(x1)}`;
      }
    }
  }
  const drawn = { zero: 0, nonfinite: 0, points: 0 };
  const hover = [];
  for (const run of state.selected) {
    const health = state.health.get(run);
    if (!health || health.error || !health.metrics[spec.metric]) continue;
    const c = columnAt(health.steps, state.step);
    if (c < 0) continue;
    const colour = runColour(run);
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let pen = false;
    health.layers.forEach((layer, i) => {
      const value = health.metrics[spec.metric].values[i][c];
      const k = classify(value, spec.scale, range);
      const x = px(i);
      if (k.special === "missing") {
        pen = false;
        return;
      }
      hover.push({ x, run, layer, value, step: health.steps[c] });
      if (k.special) {
        // Markers on the bands: the line breaks, the value stays visible.
        pen = false;
        const y = k.special === "underflow" ? plotBottom + 4 + band / 2 : top + band / 2;
        ctx.fillRect(x - 3, y - 3, 6, 6);
        if (k.special === "underflow") drawn.zero++;
        else drawn.nonfinite++;
        return;
      }
      const y = py(Math.min(1, Math.max(0, k.t)));
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
      drawn.points++;
    });
    ctx.stroke();
  }
  canvas.dataset.zero = String(drawn.zero);
  canvas.dataset.nonfinite = String(drawn.nonfinite);
  canvas.dataset.points = String(drawn.points);
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left;
    const near = hover.filter((h) => Math.abs(h.x - x) <= (W - left - right) / (depth - 1) / 2 + 1);
    if (!near.length) return hideTooltip();
    showTooltip(event, [`layer ${near[0].layer} (step ${near[0].step})`, ...near.map((h) => `${h.run}: ${fmt(h.value)}`)]);
  });
  canvas.addEventListener("mouseleave", hideTooltip);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const i = Math.round(((event.clientX - box.left - left) / (W - left - right)) * (depth - 1));
    const run = state.selected[0];
    const health = state.health.get(run);
    if (health && !health.error && i >= 0 && i < health.layers.length) openDetail(run, health.layers[i]);
  });
  return el("figure", { class: "ki-profile-figure" }, canvas);
}

// -- health map --------------------------------------------------------------

function cellSize(layers, steps) {
  const runs = Math.max(1, state.selected.length);
  const perRun = Math.min(900, (document.documentElement.clientWidth - 40) / Math.min(runs, 2) - 24);
  const perMap = (perRun - 150) / Math.max(1, Object.keys(state.spec.metrics).length) - 12;
  const h = Math.max(4, Math.min(16, Math.floor(420 / Math.max(1, layers))));
  const w = Math.max(3, Math.min(28, Math.floor(perMap / Math.max(1, steps))));
  return [w, h];
}

function highlightedRows(run, layers) {
  if (!state.highlight || state.highlight.run !== run) return [];
  return state.highlight.layers.map((l) => layers.indexOf(l)).filter((i) => i >= 0);
}

function drawHeatmap(canvas, values, spec, range, rows, w, h) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  values.forEach((row, r) => {
    row.forEach((v, c) => {
      ctx.fillStyle = cellColour(v, spec.scale, range);
      ctx.fillRect(c * w, r * h, w, h);
    });
  });
  if (rows.length) {
    ctx.strokeStyle = HIGHLIGHT_EDGE;
    ctx.lineWidth = 2;
    const first = Math.min(...rows);
    const last = Math.max(...rows);
    ctx.strokeRect(1, first * h + 1, canvas.width - 2, (last - first + 1) * h - 2);
  }
}

function legend(spec, range) {
  const canvas = el("canvas", { class: "ki-legend", width: 120, height: 8 });
  const ctx = canvas.getContext("2d");
  for (let x = 0; x < 120; x++) {
    ctx.fillStyle = rampColour(x / 119);
    ctx.fillRect(x, 0, 1, 8);
  }
  const [lo, hi] = spec.scale === "log" ? [decade(range[0]), decade(range[1])] : ["0", "1"];
  return el(
    "div",
    { class: "ki-legend-box", title: `colour scale of ${spec.label}` },
    el("span", { text: lo }),
    canvas,
    el("span", { text: hi }),
  );
}

function specialLegend() {
  const box = el("div", { class: "ki-special-legend" });
  for (const [key, { colour, label }] of Object.entries(SPECIAL)) {
    const swatch = el("span", { class: "ki-swatch", dataset: { special: key } });
    swatch.style.background = colour;
    box.append(el("span", { class: "ki-legend-item" }, swatch, el("span", { text: label })));
  }
  return box;
}

function healthPanel(run) {
  const health = state.health.get(run);
  const title = el("h3", { class: "ki-run-name" });
  const swatch = el("span", { class: "ki-swatch" });
  swatch.style.background = runColour(run);
  title.append(swatch, el("span", { text: run }));
  const panel = el("section", { class: "ki-run", dataset: { run } }, title);
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
        " to see every event. Verdicts are complete either way.",
      ),
    );
  }
  const { layers, steps } = health;
  const [w, h] = cellSize(layers.length, steps.length);
  const rows = highlightedRows(run, layers);
  const labels = el("div", { class: "ki-labels" });
  labels.style.gridTemplateRows = `repeat(${layers.length}, ${h}px)`;
  const every = h >= 10 ? 1 : Math.ceil(10 / h);
  layers.forEach((layer, i) => {
    const label = el("div", {
      class: rows.includes(i) ? "ki-label ki-highlight" : "ki-label",
      // Every label where rows are tall enough, else every few, so that
      // the text stays legible; the title names every row.
      text: i % every === 0 ? layer : "",
      title: layer,
      dataset: { layer },
      onclick: () => openDetail(run, layer),
    });
    label.style.fontSize = `${Math.min(12, Math.max(8, h))}px`;
    labels.append(label);
  });
  const grid = el(
    "div",
    { class: "ki-map" },
    el("div", { class: "ki-map-labels" }, el("div", { class: "ki-map-title", text: "layer" }), labels),
  );
  for (const [metric, meta] of Object.entries(state.spec.metrics)) {
    const spec = { ...meta, ...health.metrics[metric] };
    if (!spec.values) continue;
    const range = spec.scale === "log" ? sharedRange(metric) : [0, 1];
    const canvas = el("canvas", {
      class: "ki-heatmap",
      width: Math.max(1, steps.length * w),
      height: Math.max(1, layers.length * h),
      dataset: {
        run,
        metric,
        scale: spec.scale,
        layers: String(layers.length),
        steps: String(steps.length),
        cellWidth: String(w),
        cellHeight: String(h),
        range: range.join(","),
      },
      "aria-label": `${spec.label} heatmap`,
    });
    drawHeatmap(canvas, spec.values, spec, range, rows, w, h);
    canvas.addEventListener("mousemove", (event) => {
      const box = canvas.getBoundingClientRect();
      const c = Math.floor((event.clientX - box.left) / w);
      const r = Math.floor((event.clientY - box.top) / h);
      if (r < 0 || r >= layers.length || c < 0 || c >= steps.length) return hideTooltip();
      const k = classify(spec.values[r][c], spec.scale, range);
      showTooltip(event, [
        `layer: ${layers[r]}`,
        `step: ${steps[c]}`,
        `${spec.label}: ${fmt(spec.values[r][c])}${k.special && k.special !== "missing" ? ` (${SPECIAL[k.special].label})` : ""}`,
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
      el("figcaption", { text: spec.scale === "log" ? `${spec.label} (log)` : spec.label, title: spec.label }),
      canvas,
      legend(spec, range),
    );
    figure.style.width = `${Math.max(84, canvas.width)}px`;
    grid.append(figure);
  }
  const stepRange = steps.length
    ? `steps ${steps[0]} … ${steps[steps.length - 1]} (${steps.length} logging events, left to right)`
    : "no logging events yet";
  panel.append(grid, el("p", { class: "ki-muted", text: stepRange }));
  return panel;
}

function mapsView() {
  const box = el("section", { class: "ki-health" });
  box.append(
    el("h2", { text: "Health map" }),
    el("p", {
      class: "ki-muted",
      text: "Rows: layers in model order. Columns: logging steps. Log colour scales are shared by the runs shown. Hover a cell for its value; click a row for its detail.",
    }),
    specialLegend(),
  );
  const maps = el("div", { class: "ki-maps" });
  for (const run of state.selected) maps.append(healthPanel(run));
  if (!state.selected.length) maps.append(el("p", { class: "ki-muted", text: "Pick a run above." }));
  box.append(maps);
  return box;
}

// -- verdicts ----------------------------------------------------------------

function verdictKey(run, v) {
  return `${run}\u0000${v.kind}\u0000${v.first_layer}`;
}

function verdictsView() {
  const box = el("section", { class: "ki-verdicts" });
  box.append(el("h2", { text: "Verdicts" }));
  const table = el("table", { class: "ki-table ki-verdict-table" });
  const head = el("tr");
  for (const column of ["", "run", "severity", "problem", "first layer", "span", "evidence", "likely cause", "fix"]) {
    head.append(el("th", { text: column }));
  }
  const body = el("tbody");
  table.append(el("thead", {}, head), body);
  let count = 0;
  for (const run of state.selected) {
    const found = state.verdicts.get(run);
    if (!found) continue;
    if (found.error) {
      body.append(el("tr", {}, el("td", { colspan: 9, class: "ki-error", text: `${run}: ${found.error}` })));
      continue;
    }
    for (const v of found.verdicts) {
      count++;
      const key = verdictKey(run, v);
      const open = state.expanded.has(key);
      const active = state.highlight && state.highlight.key === key;
      const toggle = () => {
        if (open) state.expanded.delete(key);
        else state.expanded.add(key);
        state.highlight = active && open ? null : { run, layers: v.layers, key };
        if (state.highlight && v.first_layer) state.detail = { run, layer: v.first_layer, step: null };
        renderViews();
      };
      const swatch = el("span", { class: "ki-swatch" });
      swatch.style.background = runColour(run);
      body.append(
        el(
          "tr",
          {
            class: `ki-verdict${active ? " ki-highlight" : ""}`,
            tabindex: 0,
            "aria-expanded": open ? "true" : "false",
            dataset: { run, kind: v.kind, firstLayer: v.first_layer, span: String(v.layers.length), source: found.source },
            onclick: toggle,
            onkeydown: (e) => {
              if (e.key === "Enter" || e.key === " ") {
                toggle();
                e.preventDefault();
              }
            },
          },
          el("td", { class: "ki-expander", text: open ? "▾" : "▸" }),
          el("td", { class: "ki-run-cell" }, swatch, el("span", { text: run })),
          el("td", { class: `ki-sev ki-sev-${v.severity}`, text: v.severity }),
          el("td", { class: "ki-kind", text: kindText(v.kind) }),
          el("td", { class: "ki-layer", text: v.first_layer || "(model)" }),
          el("td", { text: v.layers.length > 1 ? `${v.layers.length} layers` : "1 layer" }),
          el("td", { text: v.evidence }),
          el("td", { text: v.cause || "—" }),
          el("td", { text: v.advice }),
        ),
      );
      if (open) body.append(verdictDetail(v));
    }
  }
  if (!count) {
    body.append(
      el(
        "tr",
        { class: "ki-no-verdicts" },
        el("td", { colspan: 9, class: "ki-muted", text: "No verdicts for the shown runs: every monitored layer stayed within its thresholds." }),
      ),
    );
  }
  body.dataset.count = String(count);
  const sources = new Set(state.selected.map((r) => state.verdicts.get(r)).filter((f) => f && !f.error).map((f) => f.source));
  box.append(
    table,
    sources.has("findings")
      ? el("p", {
          class: "ki-muted",
          text: "Runs written before the monitor grouped its findings show them grouped by kind and adjacent layers, without a likely cause.",
        })
      : null,
  );
  return box;
}

function verdictDetail(v) {
  const rows = el("tbody");
  for (const f of v.findings) {
    rows.append(
      el(
        "tr",
        { class: "ki-evidence", dataset: { layer: f.layer } },
        el("td", { class: "ki-layer", text: f.layer || "(model)" }),
        el("td", { text: f.step == null ? "" : String(f.step) }),
        el("td", { text: kindText(f.kind) }),
        el("td", { text: fmt(f.value) }),
        el("td", { text: fmt(f.threshold) }),
      ),
    );
  }
  const head = el("tr");
  for (const c of ["layer", "step", "condition", "value", "threshold"]) head.append(el("th", { text: c }));
  return el(
    "tr",
    { class: "ki-verdict-detail" },
    el("td", {}),
    el(
      "td",
      { colspan: 8 },
      el("p", { class: "ki-muted", text: `${v.message}${v.step == null ? "" : ` (first at step ${v.step})`}` }),
      el("div", { class: "ki-evidence-scroll" }, el("table", { class: "ki-table ki-evidence-table" }, el("thead", {}, head), rows)),
    ),
  );
}

// -- layer detail ------------------------------------------------------------

function openDetail(run, layer) {
  state.detail = { run, layer, step: null };
  renderDetail();
  const box = document.querySelector(".ki-detail");
  if (box) box.scrollIntoView({ block: "nearest" });
}

function detailView() {
  const box = el("section", { class: "ki-detail" });
  box.append(el("h2", { text: "Layer detail" }));
  const runSelect = el("select", { class: "ki-detail-run", "aria-label": "run" });
  const layerSelect = el("select", { class: "ki-detail-layer", "aria-label": "layer" });
  const fillLayers = () => {
    const info = state.runs.find((r) => r.run === runSelect.value);
    layerSelect.replaceChildren(el("option", { value: "", text: "pick a layer" }));
    for (const layer of info && info.layers ? info.layers : []) {
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
    state.detail = { run: runSelect.value, layer: "", step: null };
    fillLayers();
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

async function loadDetail() {
  const box = document.querySelector(".ki-detail-body");
  if (!box) return;
  const { run, layer } = state.detail;
  if (!run || !layer) {
    box.replaceChildren(el("p", { class: "ki-muted", text: "Pick a layer, or click a row of the health map or a point of the depth profile." }));
    delete box.dataset.layer;
    return;
  }
  box.replaceChildren(el("p", { class: "ki-muted", text: "Loading…" }));
  try {
    const detail = await getJSON("layer", { run, layer });
    if (state.detail.run !== run || state.detail.layer !== layer) return;
    box.replaceChildren(
      distributionOverSteps("activation distribution over steps", detail.activations),
      distributionAtStep(detail.activations),
      gradNormChart(detail.grad_norm),
    );
    box.dataset.layer = layer;
  } catch (error) {
    box.replaceChildren(el("p", { class: "ki-error", text: error.message }));
  }
}

function distributionOverSteps(title, hist) {
  const fig = el("figure", { class: "ki-dist" }, el("figcaption", { text: title }));
  if (!hist.steps.length) {
    fig.append(el("p", { class: "ki-muted", text: "No histograms for this layer." }));
    return fig;
  }
  const bins = hist.density[0].length;
  const W = 560;
  const H = 240;
  const w = W / hist.steps.length;
  const h = H / bins;
  const canvas = el("canvas", {
    class: "ki-dist-map",
    width: W,
    height: H,
    dataset: { steps: String(hist.steps.length), bins: String(bins) },
  });
  const ctx = canvas.getContext("2d");
  hist.density.forEach((column, c) => {
    const peak = Math.max(...column) || 1;
    column.forEach((d, r) => {
      // Low values at the bottom, like a y axis; a log-like brightness so
      // that the tails (saturation, a few live units) stay visible.
      ctx.fillStyle = rampColour(Math.log1p(99 * (d / peak)) / Math.log(100));
      ctx.fillRect(Math.floor(c * w), Math.floor((bins - 1 - r) * h), Math.ceil(w), Math.ceil(h));
    });
  });
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const c = Math.floor((event.clientX - box.left) / w);
    const r = bins - 1 - Math.floor((event.clientY - box.top) / h);
    if (c < 0 || c >= hist.steps.length || r < 0 || r >= bins) return hideTooltip();
    showTooltip(event, [
      `step: ${hist.steps[c]}`,
      `value: ${fmt(hist.edges[r])} … ${fmt(hist.edges[r + 1])}`,
      `share of outputs: ${(100 * hist.density[c][r]).toFixed(1)}%`,
    ]);
  });
  canvas.addEventListener("mouseleave", hideTooltip);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const c = Math.floor((event.clientX - box.left) / w);
    if (c >= 0 && c < hist.steps.length) {
      state.detail.step = hist.steps[c];
      const old = document.querySelector(".ki-dist-step");
      if (old) old.replaceWith(distributionAtStep(hist));
    }
  });
  fig.append(
    el(
      "div",
      { class: "ki-axes" },
      el("div", { class: "ki-yaxis" }, el("span", { text: fmt(hist.edges[hist.edges.length - 1]) }), el("span", { text: "value" }), el("span", { text: fmt(hist.edges[0]) })),
      canvas,
    ),
    el("p", {
      class: "ki-muted",
      text: `x: steps ${hist.steps[0]} … ${hist.steps[hist.steps.length - 1]}; colour: share of the step's outputs in each value bin (log scale). Click a column for its histogram.`,
    }),
  );
  return fig;
}

function distributionAtStep(hist) {
  const fig = el("figure", { class: "ki-dist-step" });
  if (!hist.steps.length) return fig;
  const step = hist.steps.includes(state.detail.step) ? state.detail.step : hist.steps[0];
  const c = hist.steps.indexOf(step);
  const select = el("select", { class: "ki-dist-step-select", "aria-label": "step of the histogram" });
  for (const s of hist.steps) {
    const option = el("option", { text: String(s) });
    option.value = String(s);
    option.selected = s === step;
    select.append(option);
  }
  select.addEventListener("change", () => {
    state.detail.step = Number(select.value);
    fig.replaceWith(distributionAtStep(hist));
  });
  fig.append(el("figcaption", {}, "activation histogram at step ", select));
  const W = 360;
  const H = 240;
  const pad = 4;
  const column = hist.density[c];
  const peak = Math.max(...column) || 1;
  const canvas = el("canvas", { class: "ki-hist", width: W, height: H, dataset: { step: String(step) } });
  const ctx = canvas.getContext("2d");
  const bw = (W - 2 * pad) / column.length;
  ctx.fillStyle = "#3367d6";
  column.forEach((d, i) => {
    const bh = (d / peak) * (H - 2 * pad);
    ctx.fillRect(pad + i * bw, H - pad - bh, Math.max(1, bw - 1), bh);
  });
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const i = Math.floor((event.clientX - box.left - pad) / bw);
    if (i < 0 || i >= column.length) return hideTooltip();
    showTooltip(event, [`value: ${fmt(hist.edges[i])} … ${fmt(hist.edges[i + 1])}`, `share: ${(100 * column[i]).toFixed(1)}%`]);
  });
  canvas.addEventListener("mouseleave", hideTooltip);
  fig.append(
    el("div", { class: "ki-axes" }, el("div", { class: "ki-yaxis" }, el("span", { text: `${(100 * peak).toFixed(0)}%` }), el("span", { text: "0" })), canvas),
    el("p", { class: "ki-muted", text: `x: value ${fmt(hist.edges[0])} … ${fmt(hist.edges[hist.edges.length - 1])}` }),
  );
  return fig;
}

function gradNormChart(points) {
  const fig = el("figure", { class: "ki-line" }, el("figcaption", { text: "gradient norm over steps (log scale)" }));
  const finite = points.filter(([, v]) => v != null && v > 0);
  if (!finite.length) {
    fig.append(
      el("p", {
        class: "ki-muted",
        text: "No positive, finite gradient norm for this layer (no trainable weights, no targets in the probe, or gradients that are exactly zero or non-finite).",
      }),
    );
    return fig;
  }
  const W = 420;
  const H = 240;
  const pad = 8;
  const canvas = el("canvas", { class: "ki-line-chart", width: W, height: H, dataset: { points: String(finite.length) } });
  const ctx = canvas.getContext("2d");
  const xs = finite.map(([s]) => s);
  const ys = finite.map(([, v]) => Math.log10(v));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.floor(Math.min(...ys)), Math.ceil(Math.max(...ys))];
  if (y1 - y0 < 1) y1 = y0 + 1;
  const px = (s) => pad + ((s - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const py = (y) => H - pad - ((y - y0) / (y1 - y0)) * (H - 2 * pad);
  ctx.strokeStyle = "#e0e0e0";
  for (let y = y0; y <= y1; y++) {
    ctx.beginPath();
    ctx.moveTo(pad, py(y));
    ctx.lineTo(W - pad, py(y));
    ctx.stroke();
  }
  ctx.strokeStyle = "#3367d6";
  ctx.lineWidth = 2;
  ctx.beginPath();
  finite.forEach(([s], i) => (i ? ctx.lineTo(px(s), py(ys[i])) : ctx.moveTo(px(s), py(ys[i]))));
  ctx.stroke();
  ctx.fillStyle = "#3367d6";
  finite.forEach(([s], i) => ctx.fillRect(px(s) - 3, py(ys[i]) - 3, 6, 6));
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
  const missing = points.length - finite.length;
  fig.append(
    el("div", { class: "ki-axes" }, el("div", { class: "ki-yaxis" }, el("span", { text: decade(y1) }), el("span", { text: decade(y0) })), canvas),
    el("p", {
      class: "ki-muted",
      text: `x: steps ${x0} … ${x1}${missing ? `; ${missing} event(s) with a norm of 0 or non-finite not drawn` : ""}`,
    }),
  );
  return fig;
}

// -- page --------------------------------------------------------------------

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
let views;

// The views below the overview; the overview keeps its focus and scroll.
function renderViews() {
  if (!views) return;
  const scroll = window.scrollY;
  views.replaceChildren(profileView(), mapsView(), verdictsView(), detailView());
  loadDetail();
  window.scrollTo(0, scroll);
}

function renderDetail() {
  const old = document.querySelector(".ki-detail");
  if (!old) return;
  old.replaceWith(detailView());
  loadDetail();
}

function renderAll() {
  if (!state.runs.length) {
    root.replaceChildren(emptyState());
    root.dataset.state = "empty";
    return;
  }
  const focused = document.activeElement;
  const keep = focused && focused.closest && focused.closest(".ki-overview");
  if (!keep || !document.querySelector(".ki-overview")) {
    views = el("div", { class: "ki-views" });
    root.replaceChildren(overviewView(), views);
  } else {
    renderOverviewBody();
  }
  renderViews();
}

// By default the most severe runs: the ones a user opens the page for.
function defaultSelection(runs) {
  const ranked = [...runs]
    .filter((r) => !r.error && r.severity)
    .sort(
      (a, b) =>
        severityRank(b.severity) - severityRank(a.severity) ||
        b.verdicts.length - a.verdicts.length ||
        a.run.localeCompare(b.run),
    );
  const top = ranked.length ? severityRank(ranked[0].severity) : -1;
  const worst = ranked.filter((r) => severityRank(r.severity) === top);
  const picked = (worst.length >= 2 ? worst : ranked).slice(0, MAX_SELECTED).map((r) => r.run);
  return picked.length ? picked : runs.slice(0, 2).map((r) => r.run);
}

async function loadSelected() {
  root.dataset.state = "loading";
  const want = [...state.selected];
  await Promise.all(
    want.map(async (run) => {
      const [health, verdicts] = await Promise.all([
        getJSON("health", { run }).catch((e) => ({ error: e.message })),
        getJSON("verdicts", { run }).catch((e) => ({ error: e.message })),
      ]);
      state.health.set(run, health);
      state.verdicts.set(run, verdicts);
    }),
  );
  if (want.join("\u0000") !== state.selected.join("\u0000")) return;
  if (!state.detail.run || !state.selected.includes(state.detail.run)) {
    state.detail = { run: state.selected[0] || "", layer: "", step: null };
  }
  renderViews();
  root.dataset.state = "ready";
}

async function refresh() {
  if (state.loading) return;
  state.loading = true;
  try {
    const body = await getJSON("runs");
    state.runs = body.runs;
    state.spec = { metrics: body.metrics, severities: body.severities };
    const names = body.runs.map((r) => r.run);
    state.selected = state.selected.filter((r) => names.includes(r));
    if (!state.userSelected || !state.selected.length) state.selected = defaultSelection(body.runs);
    state.loading = false;
    if (!state.runs.length) {
      renderAll();
      return;
    }
    renderAll();
    await loadSelected();
  } catch (error) {
    state.loading = false;
    root.replaceChildren(el("p", { class: "ki-error", text: `Could not load kerasinit data: ${error.message}` }));
    root.dataset.state = "error";
  }
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
