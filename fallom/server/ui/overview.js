// Overview: LLM calls over time (requests, errors, latency, tokens, cost), by model and config.
// Charts are inline SVG made here (createElementNS): no chart library, nothing from elsewhere.
import { api } from "./api.js";
import { el, emptyState, keyNav, onLeave, rowLink, show, tableBox } from "./dom.js";
import { count, money, ms, percent, query, time, utcTitle } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const RANGES = [["15m", "last 15 min"], ["1h", "last hour"], ["24h", "last 24 h"], ["7d", "last 7 days"]];
const HEIGHT = 150;
const PAD = { left: 60, right: 10, top: 10, bottom: 22 };
const state = { since: "24h" };  // the last range chosen, kept when the page is opened again

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// Cost is a figure only when a price is known; "–" otherwise (the page says how to add one).
const cost = (priced, usd) => (priced && usd !== null && usd !== undefined ? money(usd) : "–");
const tokens = (s) => `${count(s.input_tokens)} in / ${count(s.output_tokens)} out`;
const compact = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : count(Math.round(v)));

// A chart's layers: each draws one value of a bucket (bars stack, lines join the points).
const CHARTS = [
  { id: "requests", title: "Requests", kind: "bar", axis: compact,
    layers: [{ key: "ok", label: "OK", value: (b) => b.requests - b.errors },
      { key: "errors", label: "errors", value: (b) => b.errors }] },
  { id: "error-rate", title: "Error rate", kind: "line", axis: (v) => percent(v),
    layers: [{ key: "error_rate", label: "error rate", value: (b) => b.error_rate, text: percent }] },
  { id: "latency", title: "Latency", kind: "line", axis: (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`),
    layers: [{ key: "p50", label: "p50", value: (b) => b.p50_ms, text: ms },
      { key: "p95", label: "p95", value: (b) => b.p95_ms, text: ms }] },
  { id: "tokens", title: "Tokens", kind: "bar", axis: compact,
    layers: [{ key: "input", label: "in", value: (b) => b.input_tokens || 0 },
      { key: "output", label: "out", value: (b) => b.output_tokens || 0 }] },
  { id: "cost", title: "Cost", kind: "bar", axis: (v) => money(v), priced: true,
    layers: [{ key: "cost", label: "cost", value: (b) => b.cost_usd || 0, text: money }] },
];

// #/overview?since=1h: the range is in the address, so a view can be shared or reloaded.
export async function overviewView(params = {}) {
  if (RANGES.some(([value]) => value === params.since)) state.since = params.since;
  const data = await api(`/api/overview?${query({ since: state.since })}`);
  const select = el("select", { id: "overview-range", "aria-label": "time range", onchange: (event) => {
    location.hash = `#/overview?${query({ since: event.target.value })}`;
  } }, ...RANGES.map(([value, label]) => el("option", { value, selected: value === state.since }, label)));
  const head = el("div", { class: "overview-head" }, el("h2", {}, "Overview"), select,
    el("span", { class: "muted", title: `${utcTitle(data.since)} – ${utcTitle(data.until)}` },
      `${time(data.since)} – ${time(data.until)}`));
  if (!data.totals.requests) {
    show(head, el("p", { class: "muted", id: "overview-empty" }, "No LLM calls in this range."),
      emptyState("overview"));
    return;
  }
  const boxes = CHARTS.filter((c) => !c.priced || data.prices).map((c) => el("figure", {
    class: "chart", id: `chart-${c.id}` }, el("figcaption", {}, c.title, legend(c))));
  show(...[head, figures(data), el("div", { class: "charts" }, ...boxes),
    data.prices ? null : priceHint(),
    el("h2", {}, "By model"), statsTable("by-model", "Model", data.by_model, "model", data.prices),
    el("h2", {}, "By config"), statsTable("by-config", "Config", data.by_config, "config_key", data.prices)].filter(Boolean));
  keyNav(document.getElementById("main"));  // j/k over both tables' rows
  const draw = () => boxes.forEach((box) => {
    const chart = CHARTS.find((c) => `chart-${c.id}` === box.id);
    box.querySelector("svg")?.remove();
    box.append(drawChart(chart, data, Math.max(240, box.clientWidth)));
  });
  draw();
  window.addEventListener("resize", draw);
  onLeave(() => window.removeEventListener("resize", draw));
}

function figures(data) {  // the range's totals, the figures one reads first
  const t = data.totals;
  const figure = (id, label, value, title) => el("div", { class: "figure", id: `overview-${id}`, title },
    el("div", { class: "figure-value" }, value), el("div", { class: "muted" }, label));
  return el("div", { class: "figures" },
    figure("requests", "requests", count(t.requests)),
    figure("error-rate", "error rate", percent(t.error_rate), `${count(t.errors)} errors`),
    figure("p50", "p50 latency", ms(t.p50_ms)), figure("p95", "p95 latency", ms(t.p95_ms)),
    figure("tokens", "tokens", tokens(t)),
    figure("cost", "cost", cost(data.prices, t.cost_usd)));
}

function priceHint() {
  return el("p", { class: "muted", id: "price-hint" }, "Cost shows once the catalog has a price for a model: add ",
    el("code", {}, '[prices."gpt-4o"]'), " with ", el("code", {}, "input = 2.50"), " and ",
    el("code", {}, "output = 10.00"), " (US dollars per million tokens) to the --config file.");
}

function legend(chart) {
  if (chart.layers.length < 2) return null;
  return el("span", { class: "legend" }, ...chart.layers.map((layer) =>
    el("span", { class: `key layer-${layer.key}` }, layer.label)));
}

// A row per model (or config); it opens the traces of that model (config) in the range.
function statsTable(id, label, rows, key, priced) {
  const headers = [label, "Requests", "Error rate", "p50", "p95", "Tokens in", "Tokens out", "Cost"];
  return tableBox(el("table", { id, class: "stats" },
    el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", { class: i ? "num" : null }, h)))),
    el("tbody", {}, ...rows.map((row) => {
      const cells = [el("td", { title: row[key] ?? "" }, row[key] ?? "–"),
        ...[count(row.requests), percent(row.error_rate), ms(row.p50_ms), ms(row.p95_ms),
          count(row.input_tokens), count(row.output_tokens), cost(priced, row.cost_usd)]
          .map((v) => el("td", { class: "num" }, v))];
      if (row[key] === null || row[key] === undefined) return el("tr", { "data-key": "" }, ...cells);
      const tr = rowLink(`#/traces?${query({ [key]: row[key], since: state.since })}`, ...cells);
      tr.dataset.key = row[key];
      return tr;
    }))));
}

// One chart: buckets placed on the range's time axis; a bucket without calls draws nothing.
function drawChart(chart, data, width) {
  const from = Date.parse(data.since);
  const span = Math.max(1, Date.parse(data.until) - from);
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const buckets = data.series.filter((b) => b.requests > 0);
  const total = (b) => (chart.kind === "bar" ? chart.layers.reduce((sum, l) => sum + (l.value(b) || 0), 0)
    : Math.max(...chart.layers.map((l) => l.value(b) ?? 0)));
  const top = Math.max(...buckets.map(total), chart.kind === "line" && chart.id === "error-rate" ? 0.01 : 1e-9);
  const x = (iso) => PAD.left + ((Date.parse(iso) - from) / span) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const barW = Math.max(2, (data.bucket_s * 1000 / span) * plotW - 1);
  const root = svg("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img",
    "aria-label": chart.title, class: `plot plot-${chart.kind}` });
  root.append(...axes(chart, data, top, width, plotH));
  if (chart.kind === "bar") {
    for (const b of buckets) {
      let base = 0;
      const group = svg("g", { class: "bucket", "data-start": b.start }, svg("title", {}, tip(chart, b)));
      for (const layer of chart.layers) {
        const v = layer.value(b) || 0;
        if (v > 0) group.append(svg("rect", { class: `layer-${layer.key}`, x: x(b.start).toFixed(1),
          y: y(base + v).toFixed(1), width: barW.toFixed(1), height: Math.max(1, y(base) - y(base + v)).toFixed(1) }));
        base += v;
      }
      root.append(group);
    }
  } else {
    for (const layer of chart.layers) {
      const points = buckets.filter((b) => layer.value(b) !== null && layer.value(b) !== undefined)
        .map((b) => [x(b.start) + barW / 2, y(layer.value(b)), b]);
      root.append(svg("polyline", { class: `layer-${layer.key}`, fill: "none",
        points: points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ") }));
      for (const [px, py, b] of points) {
        root.append(svg("circle", { class: `bucket layer-${layer.key}`, "data-start": b.start, cx: px.toFixed(1),
          cy: py.toFixed(1), r: 3 }, svg("title", {}, tip(chart, b))));
      }
    }
  }
  return root;
}

function tip(chart, b) {  // the hover text of a bucket: its time and every layer's value
  const values = chart.layers.map((l) => `${l.label} ${(l.text || count)(l.value(b))}`);
  return `${time(b.start)}\n${count(b.requests)} requests · ${values.join(" · ")}`;
}

function axes(chart, data, top, width, plotH) {
  const bottom = PAD.top + plotH;
  const label = (attrs, text) => svg("text", { class: "axis-label", ...attrs }, text);
  const middle = new Date((Date.parse(data.since) + Date.parse(data.until)) / 2).toISOString();
  const long = Date.parse(data.until) - Date.parse(data.since) > 12 * 3600 * 1000;  // say the day
  return [
    svg("line", { class: "axis", x1: PAD.left, x2: width - PAD.right, y1: bottom, y2: bottom }),
    svg("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: bottom }),
    label({ x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end" }, chart.axis(top)),
    label({ x: PAD.left - 4, y: bottom, "text-anchor": "end" }, chart.axis(0)),
    label({ x: PAD.left, y: HEIGHT - 6, "text-anchor": "start" }, clock(data.since, long)),
    label({ x: (PAD.left + width - PAD.right) / 2, y: HEIGHT - 6, "text-anchor": "middle" }, clock(middle, long)),
    label({ x: width - PAD.right, y: HEIGHT - 6, "text-anchor": "end" }, clock(data.until, long)),
  ];
}

function clock(iso, long) {  // an axis time, local: the hour for short ranges, with the day for long
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, "0");
  const hour = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return long ? `${two(d.getMonth() + 1)}-${two(d.getDate())} ${hour}` : hour;
}
