// Evaluations: runs uploaded by fallom.evals (any SDK), one run, two runs compared.
import { api } from "./api.js";
import { el, folded, keyNav, rerender, rowLink, show, tableBox } from "./dom.js";
import { count, query, time } from "./format.js";

const THRESHOLD = 0.1;  // detect_regression's default: an average dropping by more is marked
const evalState = { offset: 0, limit: 50, picked: [] };
const score = (v) => v === null || v === undefined ? "–" : Number(v).toFixed(3);
const signed = (v) => `${v >= 0 ? "+" : ""}${v.toFixed(3)}`;
const union = (lists) => [...new Set(lists.flat())];

// As fallom.evals.detect_regression(current, previous, threshold): per metric both runs
// scored, the change of its average; detected when one fell by more than the threshold.
function detectRegression(current, previous, threshold = THRESHOLD) {
  const details = {};
  for (const [metric, now] of Object.entries(current || {})) {
    const before = (previous || {})[metric];
    if (before) details[metric] = { current: now.avg, previous: before.avg, delta: now.avg - before.avg };
  }
  return { detected: Object.values(details).some((d) => d.delta < -threshold), details };
}

function averageCells(scores, metrics) {
  return metrics.map((m) => el("td", { class: "num", "data-metric": m,
    title: scores && scores[m] ? `${scores[m].count} scored · min ${score(scores[m].min)} · max ${score(scores[m].max)}` : null },
  score(scores && scores[m] ? scores[m].avg : null)));
}

export async function evalsView() {
  const { runs } = await api(`/api/evals?${query({ limit: evalState.limit, offset: evalState.offset })}`);
  const metrics = union(runs.map((r) => r.metrics));
  evalState.picked = [];
  const compare = el("button", { id: "compare", disabled: true, onclick: () => {
    const [a, b] = evalState.picked;
    location.hash = `#/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  } }, "Compare the two checked runs");
  const pick = (runId) => (event) => {
    event.stopPropagation();
    evalState.picked = event.target.checked ? [...evalState.picked, runId].slice(-2)
      : evalState.picked.filter((id) => id !== runId);
    for (const box of document.querySelectorAll("#eval-runs input[type=checkbox]")) {
      box.checked = evalState.picked.includes(box.dataset.runId);
    }
    compare.disabled = evalState.picked.length !== 2;
  };
  const runRow = (r, ...cells) => {  // a link to the run: click, or Enter, or j/k then Enter
    const row = rowLink(`#/eval/${encodeURIComponent(r.run_id)}`, ...cells);
    row.dataset.runId = r.run_id;
    return row;
  };
  const rows = runs.flatMap((r) => [
    runRow(r,
      el("td", {}, el("input", { type: "checkbox", "data-run-id": r.run_id, onclick: pick(r.run_id),
                                 title: "check two runs to compare them" })),
      el("td", { title: r.name }, r.name), el("td", {}, time(r.created_at)),
      el("td", {}, r.models.join(", ")), el("td", { class: "num" }, count(r.items)),
      ...averageCells(r.scores, metrics)),
    ...(r.models.length > 1 ? r.models.map((model) => el("tr", { class: "model-row", "data-run-id": r.run_id, "data-model": model },
      el("td", {}), el("td", { class: "muted" }, "  by model"), el("td", {}), el("td", {}, model), el("td", {}),
      ...averageCells(r.by_model[model], metrics))) : [])]);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "muted" },
    "No evaluation runs yet: point FALLOM_BASE_URL at this server and run fallom.evals.evaluate.")));
  const pager = el("div", { class: "pager" },
    el("button", { onclick: () => { evalState.offset = Math.max(0, evalState.offset - evalState.limit); rerender(); } }, "Newer"),
    el("button", { onclick: () => { evalState.offset += evalState.limit; rerender(); } }, "Older"), compare);
  const body = el("tbody", {}, ...rows);
  show(tableBox(el("table", { id: "eval-runs" }, el("thead", {}, el("tr", {}, ...["", "Name", "Time", "Model(s)", "Items"].map((h, i) => el("th", { class: i === 4 ? "num" : null }, h)),
    ...metrics.map((m) => el("th", { class: "num" }, m)))), body)), pager);
  keyNav(body);
}

function cellText(value) {  // an item's input or output: folded when long, as span values are
  return value === null || value === undefined ? "–" : folded(value);
}

function metricCell(item, metric) {
  const reasoning = (item.reasoning || {})[metric];
  const value = (item.scores || {})[metric];
  return el("td", { class: "score-cell", "data-metric": metric },
    el("div", { class: value === null || value === undefined ? "score muted" : "score" }, score(value)),
    reasoning ? el("div", { class: "reasoning" }, reasoning) : null);
}

export async function evalView(runId) {
  const run = await api(`/api/evals/${encodeURIComponent(runId)}`);
  const facts = [time(run.created_at), run.judge_model ? `judge ${run.judge_model}` : null,
    `${count(run.items)} results`, run.dataset_size === null ? null : `dataset of ${count(run.dataset_size)}`];
  const summary = el("table", { id: "eval-summary", class: "metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, "Model"), ...run.metrics.map((m) => el("th", { class: "num" }, m)))),
    el("tbody", {}, ...run.models.map((model) => el("tr", { "data-model": model }, el("td", {}, model),
      ...averageCells(run.by_model[model], run.metrics)))));
  const items = el("table", { id: "eval-items", class: "items" },
    el("thead", {}, el("tr", {}, ...["#", "Model", "Input", "Output"].map((h) => el("th", {}, h)),
      ...run.metrics.map((m) => el("th", {}, m)))),
    el("tbody", {}, ...run.results.map((item, index) => el("tr", { "data-index": index },
      el("td", { class: "num" }, index + 1), el("td", {}, item.model),
      el("td", { class: "wrap" }, cellText(item.input)),
      el("td", { class: "wrap" }, cellText(item.output),
        item.reasoning && item.reasoning.error ? el("div", { class: "error" }, item.reasoning.error) : null),
      ...run.metrics.map((m) => metricCell(item, m))))));
  show(el("h2", { id: "eval-name" }, run.name), el("p", { class: "muted" }, facts.filter(Boolean).join(" · ")),
    run.description ? el("p", { id: "eval-description" }, run.description) : "",
    el("h2", {}, "Averages"), tableBox(summary), el("h2", {}, "Items"), tableBox(items));
}

const itemKey = (item) => JSON.stringify([item.model, item.input, item.system_message || ""]);

export async function compareView(first, second) {
  const [a, b] = await Promise.all([api(`/api/evals/${encodeURIComponent(first)}`),
    api(`/api/evals/${encodeURIComponent(second)}`)]);
  const [previous, current] = a.created_at <= b.created_at ? [a, b] : [b, a];
  const { detected, details } = detectRegression(current.scores, previous.scores);
  const metrics = union([previous.metrics, current.metrics]);
  const head = (run, role) => el("th", { class: "num", title: run.run_id }, `${role}: ${run.name}`, el("div", { class: "muted" }, time(run.created_at)));
  const rows = metrics.map((m) => {
    const change = details[m];
    const fell = change !== undefined && change.delta < -THRESHOLD;
    return el("tr", { "data-metric": m, "data-regression": String(fell), class: fell ? "regression" : null },
      el("td", {}, m), el("td", { class: "num" }, score(previous.scores[m] && previous.scores[m].avg)),
      el("td", { class: "num" }, score(current.scores[m] && current.scores[m].avg)),
      el("td", { class: "num" }, change === undefined ? "–" : signed(change.delta)),
      el("td", {}, fell ? "▼ regression" : ""));
  });
  const before = new Map();
  for (const item of previous.results) {
    if (!before.has(itemKey(item))) before.set(itemKey(item), []);
    before.get(itemKey(item)).push(item);
  }
  const paired = current.results.map((item) => [((before.get(itemKey(item)) || []).shift()), item]);
  const items = el("table", { id: "compare-items", class: "items" },
    el("thead", {}, el("tr", {}, ...["Model", "Input"].map((h) => el("th", {}, h)),
      ...metrics.map((m) => el("th", { class: "num" }, `${m}: before → now`)))),
    el("tbody", {}, ...paired.map(([old, now]) => el("tr", {}, el("td", {}, now.model),
      el("td", { class: "wrap" }, cellText(now.input)),
      ...metrics.map((m) => el("td", { class: "num", "data-metric": m },
        `${score(old && old.scores[m])} → ${score(now.scores[m])}`))))));
  show(el("h2", {}, "Two runs side by side"),
    el("p", { id: "regression-verdict", class: detected ? "error" : "muted" }, detected
      ? `Regression: an average fell by more than ${THRESHOLD} since the earlier run.`
      : `No metric's average fell by more than ${THRESHOLD}.`),
    tableBox(el("table", { id: "eval-compare", class: "metrics" }, el("thead", {}, el("tr", {}, el("th", {}, "Metric"),
      head(previous, "before"), head(current, "now"), el("th", { class: "num" }, "Change"), el("th", {}, ""))),
    el("tbody", {}, ...rows))), el("h2", {}, "Items"), tableBox(items));
}
