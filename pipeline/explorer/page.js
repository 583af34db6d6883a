// gradlab explorer (pipeline/explorer/page.py inlines this file, Vega and the data).
// Every number shown is read from the runs the page embeds, except what this script
// computes and the page says so: the contours (the loss formula on the data set), the
// rate map's colours and stability edges (the closed form, from the eigenvalues the
// pipeline computed), the update (parameters after minus before), sqrt(exp_avg_sq), and,
// for the study's runs, the distance to the minimiser.
"use strict";

const KIND_RANK = { grid: 0, tutorial: 1, study: 2, replay: 3 }; // detail, most first
const KIND_TAG = { grid: "grid", tutorial: "the tutorial's", study: "study, tuned", replay: "study, re-run" };
const SEED_TAG = {
  grid: "the grid's seed, every step",
  tutorial: "the tutorial's run, every step",
  study: "reporting seed, traced steps",
  replay: "tuning seed, re-run, log-spaced steps",
};
const NAMES = ["kind", "scenario", "loss", "optimizer", "clip"];
const ARROW_SHARE = 0.22; // gradient arrows: this share of the view's width
const GD_ROW = [-0.06, 0]; // the rate map's strip of gradient descent, below momentum 0
const MAP_TOP = 0.99; // the rate map's largest momentum
const MAP_SIZE = [240, 120]; // its raster: lr columns (log-spaced) x momentum rows

// --- the embedded data ---------------------------------------------------------------
function base64Bytes(id) {
  const text = document.getElementById(id).textContent.trim();
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function floatsFrom(shuffled) {
  // pack.py groups each float's bytes by position: byte k of value i is at k * n + i
  const n = shuffled.length / 4;
  const bytes = new Uint8Array(shuffled.length);
  for (let k = 0; k < 4; k++) {
    const base = k * n;
    for (let i = 0; i < n; i++) bytes[4 * i + k] = shuffled[base + i];
  }
  return new Float32Array(bytes.buffer);
}

class Runs {
  constructor(index, values) {
    this.index = index;
    this.values = values;
    this.n = index.count;
    this.names = index.names;
    this.scalars = index.scalars.length;
  }
  label(what, i) {
    return what === "lr" ? this.names.lr[this.index.lr[i]] : this.names[what][this.index[what][i]];
  }
  get(i) {
    const x = this.index;
    const columns = this.names.layout[x.layout[i]];
    const kind = this.label("kind", i);
    const rows = x.rows[i];
    const table = {};
    columns.forEach((c, j) => {
      const start = x.offset[i] + j * rows;
      table[c] = this.values.subarray(start, start + rows);
    });
    const steps = table.step ? Array.from(table.step) : x.steps[kind];
    const s = this.values.subarray(i * this.scalars, (i + 1) * this.scalars);
    return {
      id: i, kind, rows, table, steps, columns,
      scenario: this.label("scenario", i), loss: this.label("loss", i),
      optimizer: this.label("optimizer", i), clip: this.label("clip", i),
      lr: this.label("lr", i), lrCode: x.lr[i], seed: x.seed[i], dataset: x.dataset[i],
      surface: x.surface[i], name: x.name[i], diverged: x.diverged_step[i],
      initial: [s[0], s[1]], rate: s[2], rho: s[3],
    };
  }
}

// --- numbers as shown ------------------------------------------------------------------
function f32(x) {
  // the shortest decimal that reads back as this float32 (what numpy and the CSVs print)
  if (!Number.isFinite(x)) return String(x);
  for (let p = 1; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(x);
}
function f64(x, digits = 6) {
  return Number.isFinite(x) ? String(Number(x.toPrecision(digits))) : String(x);
}
function torchNumber(x) {
  // torch prints a one-element float tensor with 4 decimals (scientific when tiny or huge)
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-4 || a >= 1e8)) {
    const [m, e] = x.toExponential(4).split("e");
    const sign = e[0] === "-" ? "-" : "+";
    return `${m}e${sign}${e.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  return x.toFixed(4);
}

// --- the loss surface (the loss formula on the data: drawn, as the page says) ------------
const TERMS = {
  mse: (d) => d * d,
  l1: (d) => Math.abs(d),
  smoothl1: (d, beta) => (Math.abs(d) < beta ? (0.5 * d * d) / beta : Math.abs(d) - 0.5 * beta),
  huber: (d, delta) => (Math.abs(d) < delta ? 0.5 * d * d : delta * (Math.abs(d) - 0.5 * delta)),
  logcosh: (d) => Math.abs(d) + Math.log1p(Math.exp(-2 * Math.abs(d))) - Math.LN2,
  quartic: (d) => d * d * (d * d),
  cosh: (d) => 2 * Math.sinh(d / 2) ** 2,
};
function lossAt(surface, data, w, b) {
  const term = TERMS[surface.loss];
  let total = 0;
  for (let i = 0; i < data.x.length; i++) total += term(w * data.x[i] + b - data.y[i], surface.param);
  return total / data.x.length;
}

// --- Vega views ---------------------------------------------------------------------------
function surfaceSpec(width, height) {
  const xy = { x: { scale: "x", field: "w" }, y: { scale: "y", field: "b" } };
  return {
    width, height, padding: { left: 50, right: 10, top: 10, bottom: 40 }, autosize: "none",
    signals: [{ name: "wdom", value: [0, 1] }, { name: "bdom", value: [0, 1] }, { name: "levels", value: [1] }],
    data: [
      { name: "grid", values: [] },
      { name: "contours", source: "grid", transform: [{ type: "isocontour", thresholds: { signal: "levels" } }] },
      { name: "polygon", values: [] }, { name: "band", values: [] }, { name: "path", values: [] },
      { name: "marks", values: [] }, { name: "arrows", values: [] }, { name: "now", values: [] },
    ],
    scales: [
      { name: "x", type: "linear", domain: { signal: "wdom" }, range: "width", zero: false, nice: false },
      { name: "y", type: "linear", domain: { signal: "bdom" }, range: "height", zero: false, nice: false },
    ],
    axes: [
      { scale: "x", orient: "bottom", title: "weight", grid: false, tickCount: 7 },
      { scale: "y", orient: "left", title: "bias", grid: false, tickCount: 7 },
    ],
    marks: [
      { type: "path", clip: true, from: { data: "contours" },
        encode: { update: { stroke: { value: "#9aa3ad" }, strokeWidth: { value: 0.8 }, fill: { value: null } } },
        transform: [{ type: "geopath", field: "datum.contour" }] },
      { type: "line", from: { data: "polygon" }, clip: true,
        encode: { update: { ...xy, interpolate: { value: "linear-closed" }, fill: { value: "#2b8a3e" },
          fillOpacity: { value: 0.25 }, stroke: { value: "#2b8a3e" }, strokeWidth: { value: 1.5 } } } },
      { type: "group", from: { facet: { name: "bandrun", data: "band", groupby: "run" } },
        marks: [{ type: "line", from: { data: "bandrun" },
          encode: { update: { ...xy, stroke: { value: "#7f8c99" }, strokeOpacity: { value: 0.45 },
            strokeWidth: { value: 1 }, defined: { signal: "isFinite(datum.w) && isFinite(datum.b)" } } } }] },
      { type: "line", from: { data: "path" }, clip: true,
        encode: { update: { ...xy, stroke: { value: "#1f4e9c" }, strokeWidth: { value: 1.8 },
          defined: { signal: "isFinite(datum.w) && isFinite(datum.b)" } } } },
      { type: "symbol", from: { data: "path" }, clip: true,
        encode: { update: { ...xy, size: { value: 9 }, fill: { value: "#1f4e9c" } } } },
      { type: "symbol", from: { data: "marks" }, clip: true,
        encode: { update: { ...xy, shape: { field: "shape" }, size: { value: 150 }, fill: { field: "fill" },
          stroke: { value: "#222" }, strokeWidth: { value: 1 } } } },
      { type: "text", from: { data: "marks" }, clip: true,
        encode: { update: { ...xy, text: { field: "label" }, dx: { value: 9 }, dy: { field: "dy" },
          fontSize: { value: 11 }, fill: { value: "#222" } } } },
      { type: "rule", from: { data: "arrows" }, clip: true,
        encode: { update: { x: { scale: "x", field: "w0" }, y: { scale: "y", field: "b0" },
          x2: { scale: "x", field: "w1" }, y2: { scale: "y", field: "b1" },
          stroke: { field: "color" }, strokeWidth: { value: 2.2 } } } },
      { type: "symbol", from: { data: "arrows" }, clip: true,
        encode: { update: { x: { scale: "x", field: "w1" }, y: { scale: "y", field: "b1" },
          shape: { value: "triangle-up" }, size: { value: 70 }, fill: { field: "color" },
          angle: { signal: "atan2(scale('y', datum.b1) - scale('y', datum.b0), scale('x', datum.w1) - scale('x', datum.w0)) * 180 / PI + 90" } } } },
      { type: "symbol", from: { data: "now" }, clip: true,
        encode: { update: { ...xy, size: { value: 90 }, fill: { value: "#fff" }, stroke: { value: "#1f4e9c" },
          strokeWidth: { value: 2.5 } } } },
    ],
  };
}

function curvesSpec(width, height) {
  return {
    width, height, padding: { left: 74, right: 10, top: 8, bottom: 36 }, autosize: "none",
    signals: [{ name: "step", value: 0 }, { name: "ytitle", value: "" }],
    data: [{ name: "curves", values: [] }],
    scales: [
      { name: "x", type: "linear", domain: { data: "curves", field: "step" }, range: "width", zero: false },
      { name: "y", type: "log", domain: { data: "curves", field: "value" }, range: "height", nice: true },
      { name: "color", type: "ordinal", domain: { data: "curves", field: "series" },
        range: ["#1f4e9c", "#c2410c", "#6b7280"] },
    ],
    axes: [{ scale: "x", orient: "bottom", title: "step", tickCount: 8 },
      { scale: "y", orient: "left", title: { signal: "ytitle" }, tickCount: 5, format: "~e" }],
    legends: [{ stroke: "color", orient: "top-right", direction: "horizontal", symbolType: "stroke" }],
    marks: [
      { type: "group", from: { facet: { name: "series", data: "curves", groupby: "series" } },
        marks: [{ type: "line", from: { data: "series" },
          encode: { update: { x: { scale: "x", field: "step" }, y: { scale: "y", field: "value" },
            stroke: { scale: "color", field: "series" }, strokeWidth: { value: 1.5 } } } }] },
      { type: "rule", encode: { update: { x: { scale: "x", signal: "step" }, y: { value: 0 },
        y2: { signal: "height" }, stroke: { value: "#b3261e" }, strokeDash: { value: [4, 3] } } } },
    ],
  };
}

function dataSpec(width, height) {
  return {
    width, height, padding: { left: 44, right: 10, top: 8, bottom: 36 }, autosize: "none",
    data: [{ name: "points", values: [] }, { name: "lines", values: [] }],
    scales: [
      { name: "x", type: "linear", domain: { data: "points", field: "x" }, range: "width", zero: false, nice: true },
      { name: "y", type: "linear", domain: { fields: [{ data: "points", field: "y" }, { data: "lines", field: "y" }] },
        range: "height", zero: false, nice: true },
      { name: "color", type: "ordinal", domain: ["the model at this step", "the generating line"],
        range: ["#1f4e9c", "#2b8a3e"] },
    ],
    axes: [{ scale: "x", orient: "bottom", title: "x", tickCount: 6 }, { scale: "y", orient: "left", title: "y", tickCount: 6 }],
    legends: [{ stroke: "color", orient: "top-left", symbolType: "stroke" }],
    marks: [
      { type: "group", from: { facet: { name: "line", data: "lines", groupby: "series" } },
        marks: [{ type: "line", from: { data: "line" }, encode: { update: {
          x: { scale: "x", field: "x" }, y: { scale: "y", field: "y" }, stroke: { scale: "color", field: "series" },
          strokeWidth: { value: 1.6 }, strokeDash: { signal: "datum.series === 'the generating line' ? [5, 3] : []" } } } }] },
      { type: "symbol", from: { data: "points" }, encode: { update: {
        x: { scale: "x", field: "x" }, y: { scale: "y", field: "y" }, size: { value: 26 }, fill: { value: "#333" } } } },
    ],
  };
}

function mapSpec(width, height, title) {
  // the closed form's rate over (lr, momentum) as two rasters (heatmap transform: one image
  // each, not a mark per cell), the gradient-descent strip below momentum 0
  const colour = "datum.$value >= 1 ? '#e5d4d4' : scale('tenfold', -1 / (log(datum.$value) / LN10))";
  const image = (data, y0, y1) => ({
    type: "image", from: { data }, encode: { update: {
      x: { scale: "x", signal: "lrdom[0]" }, x2: { scale: "x", signal: "lrdom[1]" },
      y: { scale: "y", value: y1 }, y2: { scale: "y", value: y0 }, image: { field: "image" },
      aspect: { value: false }, smooth: { value: false } } },
  });
  return {
    width, height, padding: { left: 48, right: 104, top: 30, bottom: 40 }, autosize: "none",
    title: { text: title, anchor: "start", fontSize: 12, offset: 8 },
    signals: [{ name: "lrdom", value: [1e-4, 10] }],
    data: [
      { name: "rates", values: [], transform: [{ type: "heatmap", color: { expr: colour }, opacity: 1 }] },
      { name: "gd", values: [], transform: [{ type: "heatmap", color: { expr: colour }, opacity: 1 }] },
      { name: "edge", values: [] }, { name: "points", values: [] },
    ],
    scales: [
      { name: "x", type: "log", domain: { signal: "lrdom" }, range: "width" },
      { name: "y", type: "linear", domain: [GD_ROW[0], 1], range: "height", nice: false, zero: false },
      { name: "tenfold", type: "log", domain: [1, 1e4], range: { scheme: "viridis" }, reverse: true, clamp: true },
    ],
    axes: [{ scale: "x", orient: "bottom", title: "lr", format: "~g", tickCount: 6 },
      { scale: "y", orient: "left", title: "momentum", values: [(GD_ROW[0] + GD_ROW[1]) / 2, 0.2, 0.4, 0.6, 0.8, 1],
        labelExpr: "datum.value < 0 ? 'GD' : format(datum.value, '.1f')" }],
    legends: [{ fill: "tenfold", title: ["steps per", "10× shrink"], orient: "right", gradientLength: 150,
      direction: "vertical", values: [1, 10, 100, 1000, 10000], format: "~g" }],
    marks: [
      image("rates", 0, MAP_TOP), image("gd", GD_ROW[0], GD_ROW[1]),
      { type: "line", from: { data: "edge" }, clip: true, encode: { update: {
        x: { scale: "x", field: "lr" }, y: { scale: "y", field: "mu" }, stroke: { value: "#b3261e" },
        strokeWidth: { value: 2 }, strokeDash: { value: [6, 3] } } } },
      { type: "symbol", from: { data: "points" }, clip: true, interactive: false, encode: { update: {
        x: { scale: "x", field: "lr" }, y: { scale: "y", field: "mu" }, shape: { field: "shape" },
        size: { signal: "datum.selected ? 330 : 150" }, fill: { value: "#111" } } } },
      { type: "symbol", from: { data: "points" }, clip: true, encode: { update: {
        x: { scale: "x", field: "lr" }, y: { scale: "y", field: "mu" }, shape: { field: "shape" },
        size: { signal: "datum.selected ? 200 : 70" },
        fill: { signal: "isFinite(datum.rate) && datum.rate < 1 ? scale('tenfold', -1 / (log(datum.rate) / LN10)) : '#e5d4d4'" },
        stroke: { signal: "datum.selected ? '#ff5a4f' : '#fff'" }, strokeWidth: { signal: "datum.selected ? 3 : 1.4" },
        cursor: { value: "pointer" }, tooltip: { field: "tip" } } } },
    ],
  };
}

async function view(spec, container, renderer = "svg") {
  const v = new vega.View(vega.parse(spec), { renderer, container, hover: true });
  await v.runAsync();
  return v;
}

// --- the explorer ----------------------------------------------------------------------
class Explorer {
  constructor(index, values) {
    this.x = index;
    this.runs = new Runs(index.runs, values);
    this.state = {};
    this.ui = Object.fromEntries(
      ["scenario", "loss", "optimizer", "clip", "lr", "seed", "step"].map((k) => [k, document.getElementById(k)]),
    );
    const levels = ["kind", "scenario", "loss", "optimizer", "clip", "lr"];
    this.L = Object.fromEntries(levels.map((k) => [k, Array.from({ length: this.runs.n }, (_, i) => this.runs.label(k, i))]));
    this.L.seed = this.runs.index.seed;
    this.byKey = new Map(); // setting -> the run with most detail
    this.groups = new Map(); // kind and setting but the seed -> its runs (a band)
    this.measured = new Map(); // scenario, loss, data set -> the rate map's runs on it
    for (let i = 0; i < this.runs.n; i++) {
      const key = this.key(this.setting(i));
      const have = this.byKey.get(key);
      if (have === undefined || KIND_RANK[this.L.kind[i]] < KIND_RANK[this.L.kind[have]]) this.byKey.set(key, i);
      push(this.groups, this.groupKey(i), i);
      if (this.L.kind[i] === "replay") push(this.measured, this.dataKey(i), i);
    }
    this.unique = [...this.byKey.values()];
  }
  groupKey(i) {
    return ["kind", "scenario", "loss", "optimizer", "clip", "lr"].map((k) => this.L[k][i]).join("|");
  }
  dataKey(i) {
    return [this.L.scenario[i], this.L.loss[i], this.runs.index.dataset[i]].join("|");
  }
  setting(i) {
    const L = this.L;
    return { scenario: L.scenario[i], loss: L.loss[i], optimizer: L.optimizer[i], clip: L.clip[i], lr: L.lr[i], seed: L.seed[i] };
  }
  asked(hash) {
    // an address's setting: #scenario=...&loss=...&...&step=t, or #cell=<grid cell>&step=t
    const asked = Object.fromEntries(new URLSearchParams(hash.slice(1)));
    if (asked.cell === undefined) return asked;
    for (let i = 0; i < this.runs.n; i++) {
      if (this.runs.label("kind", i) === "grid" && this.runs.index.name[i] === asked.cell) {
        return { ...this.setting(i), step: asked.step };
      }
    }
    return {};
  }
  key(s) {
    return [s.scenario, s.loss, s.optimizer, s.clip, s.lr, s.seed].join("|");
  }
  options(level, chosen) {
    // the values of `level` among the runs that match the choices above it, in order
    const order = ["scenario", "loss", "optimizer", "clip", "lr", "seed"];
    const above = order.slice(0, order.indexOf(level));
    const found = new Map();
    for (const i of this.unique) {
      if (above.every((k) => this.L[k][i] === chosen[k])) {
        const value = this.L[level][i];
        const tags = found.get(value) || new Set();
        tags.add(this.L.kind[i]);
        found.set(value, tags);
      }
    }
    const values = [...found.keys()];
    if (level === "lr" || level === "seed") values.sort((a, b) => a - b);
    else if (level === "scenario") values.sort((a, b) => (a === "tutorial" ? -1 : b === "tutorial" ? 1 : 0));
    else {
      const list = this.runs.names[level];
      values.sort((a, b) => list.indexOf(a) - list.indexOf(b));
    }
    return values.map((v) => ({ value: v, kinds: [...found.get(v)] }));
  }
  fill(level, chosen) {
    const select = this.ui[level];
    const opts = this.options(level, chosen);
    select.replaceChildren(...opts.map(({ value, kinds }) => {
      const o = document.createElement("option");
      o.value = String(value);
      const tag = level === "lr" ? kinds.map((k) => KIND_TAG[k]).join("; ")
        : level === "seed" ? SEED_TAG[kinds.sort((a, b) => KIND_RANK[a] - KIND_RANK[b])[0]] : "";
      o.textContent = tag ? `${value} (${tag})` : String(value);
      return o;
    }));
    const same = (a, b) => (level === "lr" || level === "seed" ? Number(a) === Number(b) : String(a) === String(b));
    // the value asked for; else the one with the most detail (the grid's first), nearest
    const rank = (o) => Math.min(...o.kinds.map((k) => KIND_RANK[k]));
    const far = (o) => (level === "lr" ? Math.abs(Math.log(o.value / Number(chosen[level]))) || 0 : 0);
    const best = [...opts].sort((a, b) => rank(a) - rank(b) || far(a) - far(b))[0];
    const value = (opts.find((o) => same(o.value, chosen[level])) || best).value;
    select.value = String(value);
    return value;
  }
  async select(wanted, step = 0) {
    const chosen = {};
    for (const level of ["scenario", "loss", "optimizer", "clip", "lr", "seed"]) {
      chosen[level] = this.fill(level, { ...chosen, [level]: wanted[level] });
    }
    const i = this.byKey.get(this.key(chosen));
    this.run = this.runs.get(i);
    this.surface = this.x.surfaces[this.run.surface];
    this.data = this.x.datasets[this.run.dataset];
    this.ui.step.max = String(this.run.rows - 1);
    this.state = { ...chosen, run: i };
    this.drawSurfaceBase();
    this.drawCurves();
    if (this.heavyView) await this.drawMaps(); // drawn once the first step is shown (main)
    await this.show(Math.min(step, this.run.rows - 1));
  }
  // the parameters before and after recorded row t (the start before row 0)
  params(run, t) {
    const w = run.table.weight, b = run.table.bias;
    const before = t === 0 ? run.initial : [w[t - 1], b[t - 1]];
    return { before, after: [w[t], b[t]] };
  }
  band() {
    const r = this.run, out = [];
    for (const i of this.groups.get(this.groupKey(r.id))) {
      if (i === r.id) continue;
      const other = this.runs.get(i);
      out.push({ run: i, w: other.initial[0], b: other.initial[1] });
      for (let t = 0; t < other.rows; t++) out.push({ run: i, w: other.table.weight[t], b: other.table.bias[t] });
    }
    return out;
  }
  drawSurfaceBase() {
    const r = this.run, s = this.surface;
    const path = [{ w: r.initial[0], b: r.initial[1] }];
    for (let t = 0; t < r.rows; t++) path.push({ w: r.table.weight[t], b: r.table.bias[t] });
    const band = this.band();
    const line = this.x.lines[r.scenario] || [NaN, NaN];
    const points = [...path, { w: s.w, b: s.b }, { w: line[0], b: line[1] }];
    const finite = points.filter((p) => Number.isFinite(p.w) && Number.isFinite(p.b) && Math.abs(p.w) < 1e4 && Math.abs(p.b) < 1e4);
    let [w0, w1, b0, b1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const p of finite) { w0 = Math.min(w0, p.w); w1 = Math.max(w1, p.w); b0 = Math.min(b0, p.b); b1 = Math.max(b1, p.b); }
    const pw = Math.max((w1 - w0) * 0.12, 0.25), pb = Math.max((b1 - b0) * 0.12, 0.25);
    [w0, w1, b0, b1] = [w0 - pw, w1 + pw, b0 - pb, b1 + pb];
    this.domain = { w: [w0, w1], b: [b0, b1] };
    const nx = 96, ny = 80, W = this.surfaceView.width(), H = this.surfaceView.height();
    const values = new Float64Array(nx * ny);
    let top = -Infinity;
    for (let j = 0; j < ny; j++) {
      const b = b1 - ((b1 - b0) * j) / (ny - 1);
      for (let i = 0; i < nx; i++) {
        const v = lossAt(s, this.data, w0 + ((w1 - w0) * i) / (nx - 1), b);
        values[j * nx + i] = v;
        top = Math.max(top, v);
      }
    }
    const low = lossAt(s, this.data, s.w, s.b);
    const levels = [];
    for (let k = 1; k <= 14; k++) levels.push(low + (top - low) * Math.pow(10, -4 + (4 * k) / 14));
    const sx = W / (nx - 1), sy = H / (ny - 1);
    const marks = [
      { w: s.w, b: s.b, shape: "cross", fill: "#2b8a3e", dy: -8, label: s.unique ? "minimiser" : "a minimiser" },
    ];
    if (Number.isFinite(line[0])) marks.push({ w: line[0], b: line[1], shape: "diamond", fill: "#f2c94c", dy: 14, label: `y = ${line[0]}x${line[1] ? ` + ${line[1]}` : ""}` });
    this.surfaceView
      .signal("wdom", this.domain.w).signal("bdom", this.domain.b).signal("levels", levels)
      .data("grid", [{ width: nx, height: ny, values, scale: [sx, sy], translate: [-0.5 * sx, -0.5 * sy] }])
      .data("polygon", s.polygon.map(([w, b]) => ({ w, b })))
      .data("band", band).data("path", path).data("marks", marks);
    document.getElementById("band-note").textContent = band.length
      ? `grey: the other ${new Set(band.map((p) => p.run)).size} seeds at this setting (${SEED_TAG[r.kind]}; each on its own data set where the scenario draws noise)`
      : "grey band: none (one seed at this setting)";
  }
  drawCurves() {
    const r = this.run, rows = [];
    if (r.table.loss) {
      for (let t = 0; t < r.rows; t++) {
        if (r.table.loss[t] > 0) rows.push({ step: r.steps[t], value: r.table.loss[t], series: "loss" });
        if (r.table.grad_norm[t] > 0) rows.push({ step: r.steps[t], value: r.table.grad_norm[t], series: "grad norm" });
      }
      this.curvesView.signal("ytitle", "recorded (log scale)");
      document.getElementById("curves-note").textContent = "the loss and the gradient norm before clipping, as the trace recorded them";
    } else {
      const s = this.surface;
      for (let t = 0; t < r.rows; t++) {
        const d = Math.hypot(r.table.weight[t] - s.w, r.table.bias[t] - s.b);
        if (d > 0) rows.push({ step: r.steps[t], value: d, series: "distance to the minimiser" });
      }
      this.curvesView.signal("ytitle", "distance (log scale)");
      document.getElementById("curves-note").textContent = "the distance to the minimiser, computed in this page from the recorded weight and bias (the study keeps no gradients)";
    }
    this.curvesView.data("curves", rows);
  }
  async show(t) {
    const r = this.run;
    const token = (this.token = (this.token || 0) + 1); // the latest call marks the page ready
    this.state.step = t;
    this.ui.step.value = String(t);
    document.getElementById("step-out").textContent = `step ${r.steps[t]} (${t + 1} of ${r.rows} recorded)`;
    const { before, after } = this.params(r, t);
    const span = this.domain.w[1] - this.domain.w[0];
    const arrows = [];
    const tab = r.table;
    if (tab.grad_weight) {
      const g = [tab.grad_weight[t], tab.grad_bias[t]], c = [tab.clipped_grad_weight[t], tab.clipped_grad_bias[t]];
      const k = (ARROW_SHARE * span) / (Math.hypot(...g) || 1);
      arrows.push({ w0: before[0], b0: before[1], w1: before[0] - k * g[0], b1: before[1] - k * g[1], color: "#d62728" });
      if (tab.clipped[t]) arrows.push({ w0: before[0], b0: before[1], w1: before[0] - k * c[0], b1: before[1] - k * c[1], color: "#f28e2b" });
    }
    if (Number.isFinite(after[0]) && Number.isFinite(after[1])) {
      arrows.push({ w0: before[0], b0: before[1], w1: after[0], b1: after[1], color: "#1f77b4" });
    }
    this.surfaceView.data("arrows", arrows).data("now", [{ w: before[0], b: before[1] }]);
    this.curvesView.signal("step", r.steps[t]);
    this.dataView.data("points", this.data.x.map((x, i) => ({ x, y: this.data.y[i] })));
    const xs = [Math.min(...this.data.x), Math.max(...this.data.x)];
    const line = this.x.lines[r.scenario] || [NaN, NaN];
    const lines = xs.map((x) => ({ series: "the model at this step", x, y: before[0] * x + before[1] }));
    if (Number.isFinite(line[0])) lines.push(...xs.map((x) => ({ series: "the generating line", x, y: line[0] * x + line[1] })));
    this.dataView.data("lines", lines);
    this.table(t, before, after);
    this.tutorial(t);
    await Promise.all([this.surfaceView.runAsync(), this.curvesView.runAsync(), this.dataView.runAsync()]);
    if (token !== this.token) return;
    this.address = "#" + new URLSearchParams({ ...this.setting(r.id), step: String(t) }).toString();
    try {
      history.replaceState(null, "", this.address); // the address opens this setting and step
    } catch (_) {
      // a sandboxed frame (MLflow's artifact view) may refuse; the page works without it
    }
    document.body.dataset.ready = `${r.id}:${t}`;
  }
  table(t, before, after) {
    const r = this.run, tab = r.table, rows = [];
    const cell = (field, value, text, cls = "num") => `<td class="${cls}" data-field="${field}" data-value="${value}">${text}</td>`;
    const exact = (field, v) => cell(field, f32(v), f32(v));
    const step = r.steps[t];
    rows.push(`<tr><th>step</th>${cell("step", step, `${step} <span class="source">(${t + 1} of ${r.rows} recorded; ${SEED_TAG[r.kind]})</span>`, "")}</tr>`);
    rows.push(`<tr class="sep"><th colspan="3">before the step</th></tr>`);
    rows.push(`<tr><th>weight, bias</th>${exact("before_weight", before[0])}${exact("before_bias", before[1])}</tr>`);
    if (tab.loss) {
      rows.push(`<tr><th>loss</th>${exact("loss", tab.loss[t])}<td></td></tr>`);
      rows.push(`<tr class="sep"><th colspan="3">loss.backward(): what .grad holds</th></tr>`);
      rows.push(`<tr><th>weight.grad</th>${cell("grad_weight", f32(tab.grad_weight[t]), `<span class="torch">tensor([[${torchNumber(tab.grad_weight[t])}]])</span> = ${f32(tab.grad_weight[t])}`)}</tr>`);
      rows.push(`<tr><th>bias.grad</th>${cell("grad_bias", f32(tab.grad_bias[t]), `<span class="torch">tensor([${torchNumber(tab.grad_bias[t])}])</span> = ${f32(tab.grad_bias[t])}`)}</tr>`);
      rows.push(`<tr><th>gradient norm</th>${exact("grad_norm", tab.grad_norm[t])}<td class="source">L2, before clipping</td></tr>`);
      const clipped = tab.clipped[t] === 1;
      rows.push(`<tr class="sep"><th colspan="3">clipping (${r.clip})</th></tr>`);
      rows.push(`<tr><th>clipped</th>${cell("clipped", clipped ? 1 : 0, clipped ? "yes: the optimizer got" : "no: .grad unchanged", clipped ? "clipped-yes" : "")}</tr>`);
      rows.push(`<tr><th>weight.grad, bias.grad</th>${exact("clipped_grad_weight", tab.clipped_grad_weight[t])}${exact("clipped_grad_bias", tab.clipped_grad_bias[t])}</tr>`);
      const state = r.columns.filter((c) => c.endsWith("_weight") && !["grad_weight", "clipped_grad_weight"].includes(c));
      rows.push(`<tr class="sep"><th colspan="3">optimizer.step(): its state after the step (optimizer.state)</th></tr>`);
      if (!state.length) rows.push(`<tr><th>${r.optimizer}</th><td colspan="2" class="source">keeps no state${r.kind === "tutorial" ? " (plain SGD)" : ""}</td></tr>`);
      for (const c of state) {
        const key = c.slice(0, -"_weight".length);
        rows.push(`<tr><th>${key}</th>${exact(`state:${key}_weight`, tab[c][t])}${exact(`state:${key}_bias`, tab[`${key}_bias`][t])}</tr>`);
        if (key === "exp_avg_sq") {
          const sw = Math.sqrt(tab[c][t]), sb = Math.sqrt(tab[`${key}_bias`][t]);
          rows.push(`<tr><th>√v = sqrt(exp_avg_sq)</th>${cell("sqrt_v_weight", sw, f64(sw, 7), "num computed")}${cell("sqrt_v_bias", sb, f64(sb, 7), "num computed")}</tr>`);
        }
      }
    }
    const du = [after[0] - before[0], after[1] - before[1]];
    rows.push(`<tr class="sep"><th colspan="3">${tab.loss ? "the update" : `from the previous recorded step to step ${step}`}</th></tr>`);
    rows.push(`<tr><th>Δweight, Δbias</th>${cell("update_weight", du[0], f64(du[0], 8), "num computed")}${cell("update_bias", du[1], f64(du[1], 8), "num computed")}</tr>`);
    rows.push(`<tr><th>weight, bias after</th>${exact("after_weight", after[0])}${exact("after_bias", after[1])}</tr>`);
    document.getElementById("numbers").innerHTML = rows.join("");
    const head = ["weight", "bias"].map((p) => `<th>${p}</th>`).join("");
    document.getElementById("numbers-head").innerHTML = `<tr><th></th>${head}</tr>`;
    document.getElementById("run-source").textContent = this.x.kinds[r.kind] + (r.name && r.kind === "grid" ? ` Cell ${r.name}: traces/${r.name}.csv.` : "");
  }
  tutorial(t) {
    const box = document.getElementById("tutorial");
    const on = this.run.kind === "tutorial" && t === 0;
    box.classList.toggle("hidden", !on);
    if (!on) return;
    const w = this.x.walkthrough, cf = w.closed_form, g = w.grad;
    const set = (id, v) => { const e = document.getElementById(id); e.textContent = v; e.dataset.value = v; };
    set("walk-weight", f32(w.initial["linear.weight"][0]));
    set("walk-bias", f32(w.initial["linear.bias"][0]));
    set("walk-grad-weight", f32(g["linear.weight"][0]));
    set("walk-grad-bias", f32(g["linear.bias"][0]));
    set("closed-weight", String(cf["linear.weight"][0]));
    set("closed-bias", String(cf["linear.bias"][0]));
    set("closed-diff", f64(w.max_abs_diff, 2));
  }
  async drawMaps() {
    const r = this.run, s = this.surface, m = this.x.rate_map;
    const note = document.getElementById("map-note");
    const curved = s.eigenvalues[1] > 0;
    document.getElementById("maps").classList.toggle("hidden", !curved);
    if (!curved) {
      note.textContent = `${r.loss} has no curvature at its minimiser on this data: no closed-form rate (choose another loss).`;
      return;
    }
    // the measured runs on this data set: the chosen seed's if it has some, else the first seed's
    const here = this.measured.get(this.dataKey(r.id)) || [];
    const seeds = [...new Set(here.map((i) => this.runs.index.seed[i]))].sort((a, b) => a - b);
    const seed = seeds.includes(r.seed) ? r.seed : seeds[0];
    const [lo, hi] = m.lr, [nx, ny] = MAP_SIZE;
    const lam = s.eigenvalues;
    const lrs = Array.from({ length: nx }, (_, i) => lo * Math.pow(hi / lo, (i + 0.5) / nx));
    const gd = new Float64Array(nx);
    lrs.forEach((lr, i) => { gd[i] = closedRate(lr, 0, lam, false, 0, m.settings.sgd.weight_decay); });
    for (const [kind, v] of [["heavy", this.heavyView], ["nesterov", this.nesterovView]]) {
      const opt = kind === "heavy" ? "momentum" : "nesterov";
      const damp = kind === "heavy" ? m.settings.momentum.dampening : 0;
      const decay = m.settings[opt].weight_decay;
      const values = new Float64Array(nx * ny);
      for (let j = 0; j < ny; j++) {
        const mu = (MAP_TOP * (ny - j - 0.5)) / ny; // row 0: the top of the image
        for (let i = 0; i < nx; i++) values[j * nx + i] = closedRate(lrs[i], mu, lam, kind === "nesterov", damp, decay);
      }
      const edge = m.momenta.map((mu, k) => ({ mu, lr: m.edges[kind][k] / (lam[1] + decay) }));
      const points = [];
      for (const i of here) {
        const o = this.runs.label("optimizer", i);
        if (this.runs.index.seed[i] !== seed || !(o === "sgd" || o === opt)) continue;
        const run = this.runs.get(i);
        const mu = o === "sgd" ? (GD_ROW[0] + GD_ROW[1]) / 2 : m.settings[o].momentum;
        points.push({ run: i, lr: run.lr, mu, rate: run.rate, shape: o === "sgd" ? "square" : "circle",
          selected: i === r.id,
          tip: `${o} lr ${f64(run.lr, 4)}, seed ${seed}: measured rate ${f64(run.rate, 4)}, closed form ${f64(run.rho, 4)} (click: its path)` });
      }
      v.signal("lrdom", [lo, hi]).data("edge", edge).data("points", points)
        .data("rates", [{ width: nx, height: ny, values }]).data("gd", [{ width: nx, height: 1, values: gd }]);
      await v.runAsync();
    }
    note.innerHTML = `On ${r.scenario}'s data (seed ${r.seed}), ${r.loss}: the Hessian at the minimiser has eigenvalues ` +
      `<span class="num" data-field="lambda_min">${f64(lam[0], 6)}</span> and <span class="num" data-field="lambda_max">${f64(lam[1], 6)}</span> (computed by the pipeline). ` +
      `The error shrinks by the rate ρ per step; colours: ρ computed in this page by the closed form (the largest |root| of the step's characteristic polynomial, over both eigenvalues), ` +
      `shown as the steps a tenfold shrink takes, −1/log10 ρ; grey-red: ρ ≥ 1, diverges. Dashed red: the stability edge (lr λmax at the edge from pipeline/optimizers/sgd.py). ` +
      `Symbols: the study's tuning runs without clipping on this data set, seed ${seed} (squares gradient descent, circles momentum), ` +
      `re-run with its engine, filled by the rate they measured. Click one to open its path.` +
      (r.scenario === "heavy" ? " This scenario trains on minibatches: the closed form is full-batch gradient descent's." : "");
  }
}

function push(map, key, value) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function closedRate(lr, mu, lam, nesterov, dampening, decay) {
  // the spectral radius of torch's SGD step matrix (pipeline/explorer/rates.py, same formula)
  let rho = 0;
  for (const a of lam) {
    const c = lr * (a + decay);
    let r;
    if (mu === 0) r = Math.abs(1 - c);
    else {
      const T = nesterov ? 1 + mu - c * (1 + mu * (1 - dampening)) : 1 + mu - (1 - dampening) * c;
      const D = nesterov ? mu * (1 - c) : mu;
      const disc = T * T - 4 * D;
      r = disc >= 0 ? Math.max(Math.abs(T + Math.sqrt(disc)), Math.abs(T - Math.sqrt(disc))) / 2 : Math.sqrt(Math.abs(D));
    }
    rho = Math.max(rho, r);
  }
  return rho;
}

async function main() {
  performance.mark("script");
  const [indexBytes, valueBytes] = await Promise.all([gunzip(base64Bytes("gradlab-index")), gunzip(base64Bytes("gradlab-values"))]);
  performance.mark("inflated");
  const index = JSON.parse(new TextDecoder().decode(indexBytes));
  const e = new Explorer(index, floatsFrom(valueBytes));
  performance.mark("indexed");
  window.explorer = e;
  const narrow = document.documentElement.clientWidth < 1000;
  const wide = Math.min(560, document.documentElement.clientWidth - 80);
  e.surfaceView = await view(surfaceSpec(wide - 60, narrow ? 380 : 430), "#surface", "canvas");
  e.curvesView = await view(curvesSpec(wide - 84, 170), "#curves", "canvas");
  e.dataView = await view(dataSpec(narrow ? wide - 60 : 360, 190), "#data", "canvas");
  const wanted = e.asked(location.hash);
  const start = Object.keys(wanted).length ? wanted : index.start;
  window.addEventListener("hashchange", () => {
    if (location.hash === e.address) return;
    const asked = e.asked(location.hash);
    e.select(asked, Number(asked.step || 0));
  });
  for (const level of ["scenario", "loss", "optimizer", "clip", "lr", "seed"]) {
    e.ui[level].addEventListener("change", () => {
      const now = { ...e.setting(e.state.run), [level]: e.ui[level].value };
      e.select(now, 0);
    });
  }
  e.ui.step.addEventListener("input", () => e.show(Number(e.ui.step.value)));
  document.getElementById("to-tutorial").addEventListener("click", () => e.select(index.start, 0));
  await e.select(start, Number(wanted.step || 0));
  performance.mark("shown");
  document.getElementById("opened").textContent = `opened in ${Math.round(performance.now())} ms`;
  // the rate maps, below the first screen, after it
  const half = narrow ? wide - 160 : 500;
  e.heavyView = await view(mapSpec(half, 250, "gradient descent (GD, the strip below momentum 0) and heavy ball"), "#map-heavy", "canvas");
  e.nesterovView = await view(mapSpec(half, 250, "gradient descent (GD) and Nesterov"), "#map-nesterov", "canvas");
  for (const v of [e.heavyView, e.nesterovView]) {
    v.addEventListener("click", (_, item) => {
      if (item && item.datum && item.datum.run !== undefined) e.select(e.setting(item.datum.run), 0);
    });
  }
  await e.drawMaps();
  performance.mark("maps");
  document.body.dataset.maps = "drawn";
}

main().catch((err) => {
  document.body.dataset.error = String(err);
  document.getElementById("numbers").textContent = `The page could not open its data: ${err}`;
  throw err;
});
