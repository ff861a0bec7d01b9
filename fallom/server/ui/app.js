// fallom serve's web UI: no build step, no dependency, nothing loaded from elsewhere.
// Every value from a trace reaches the page through text nodes (el() below), never as HTML.
"use strict";

const KEY = "fallom.apiKey";
const POLL_MS = 3000;
const FOLD_CHARS = 4000;
const main = document.getElementById("main");
let poller = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) { main.replaceChildren(...nodes); }

// -- the API, with the key from this tab's session storage ------------------------------
class Unauthorized extends Error {}

async function api(path) {
  const key = sessionStorage.getItem(KEY) || "local";  // no --api-key: any key is taken
  const response = await fetch(path, { headers: { Authorization: `Bearer ${key}` } });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function login() {
  const input = el("input", { type: "password", placeholder: "API key", autocomplete: "off",
                              id: "api-key" });
  const form = el("form", { class: "login", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    route();
  } }, el("strong", {}, "This server asks for an API key"),
  el("span", { class: "muted" }, "One of the keys fallom serve was started with (--api-key). " +
     "It is kept only in this tab."), input, el("button", { type: "submit" }, "Open"));
  show(form);
  input.focus();
}

// -- formatting ----------------------------------------------------------------------------
const ms = (v) => v === null || v === undefined ? "–" :
  v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Number(v).toFixed(1)} ms`;
const count = (v) => v === null || v === undefined ? "–" : Number(v).toLocaleString("en");
const percent = (v) => v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`;
const time = (iso) => iso ? iso.replace("T", " ").replace("Z", "").slice(0, 23) : "";

function startMicros(iso) {  // ISO 8601 with microseconds, kept to the microsecond
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z?$/.exec(iso || "");
  if (!match) return 0;
  const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
  return Date.parse(`${match[1]}Z`) * 1000 + Number(fraction);
}

function jsonText(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function folded(value) {  // long values folded: the first part, then the rest on demand
  const text = jsonText(value);
  if (text.length <= FOLD_CHARS) return el("pre", {}, text);
  const rest = el("pre", {}, text);
  return el("details", {}, el("summary", {}, `${text.slice(0, 200)}… (${count(text.length)} characters)`), rest);
}

// -- traces ---------------------------------------------------------------------------------
const FILTERS = [["since", "start from (ISO)"], ["name", "root name"], ["q", "any span name"],
  ["session_id", "session"], ["customer_id", "customer"], ["config_key", "config"],
  ["model", "model"], ["min_duration_ms", "min ms"], ["min_tokens", "min tokens"],
  ["min_spans", "min spans"]];
const traceState = { filters: {}, offset: 0, limit: 50, shown: [] };

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value !== undefined) search.set(name, value);
  return search.toString();
}

async function tracesView() {
  const inputs = FILTERS.map(([name, hint]) => el("input", {
    name, placeholder: hint, value: traceState.filters[name] || "",
    onchange: (event) => { traceState.filters[name] = event.target.value.trim(); traceState.offset = 0; loadTraces(); } }));
  const status = el("select", { name: "status", onchange: (event) => {
    traceState.filters.status = event.target.value; traceState.offset = 0; loadTraces(); } },
  ...["", "OK", "ERROR"].map((v) => el("option", { value: v, selected: traceState.filters.status === v }, v || "any status")));
  const banner = el("div", { class: "banner", id: "new-traces", hidden: true,
                             onclick: () => { window.scrollTo(0, 0); loadTraces(); } });
  const body = el("tbody", { id: "trace-rows" });
  const table = el("table", { id: "traces" }, el("thead", {}, el("tr", {}, ...["Start", "Name", "Session", "Customer", "Config",
    "Model", "Status", "Duration", "Tokens", "Spans"].map((h, i) => el("th", { class: i > 6 ? "num" : null }, h)))), body);
  const pager = el("div", { class: "pager" },
    el("button", { id: "prev", onclick: () => { traceState.offset = Math.max(0, traceState.offset - traceState.limit); loadTraces(); } }, "Newer"),
    el("button", { id: "next", onclick: () => { traceState.offset += traceState.limit; loadTraces(); } }, "Older"),
    el("span", { class: "muted", id: "page-info" }));
  const refused = el("p", { class: "error", id: "trace-error", hidden: true });
  show(el("div", { class: "filters" }, ...inputs, status), refused, banner, table, pager);
  await loadTraces();
  poller = setInterval(pollTraces, POLL_MS);
}

function traceRow(t) {
  return el("tr", { class: "clickable", "data-trace-id": t.trace_id,
                    onclick: () => { location.hash = `#/trace/${t.trace_id}`; } },
    el("td", {}, time(t.start_time)), el("td", {}, t.root_name || "?"),
    el("td", {}, t.session_id === t.trace_id ? "–" : t.session_id || "–"),
    el("td", {}, t.customer_id || "–"), el("td", {}, t.config_key || "–"),
    el("td", {}, (t.models || []).join(", ") || "–"),
    el("td", { class: `status-${t.status}`, title: t.error_message || "" }, t.status),
    el("td", { class: "num" }, ms(t.duration_ms)), el("td", { class: "num" }, count(t.total_tokens)),
    el("td", { class: "num" }, count(t.spans)));
}

async function fetchTraces(offset) {
  return (await api(`/api/traces?${query({ ...traceState.filters, limit: traceState.limit, offset })}`)).traces;
}

async function loadTraces() {
  const refused = document.getElementById("trace-error");
  let traces;
  try {
    traces = await fetchTraces(traceState.offset);
  } catch (error) {  // a filter the server refuses: say why, keep the filters to fix it
    if (error instanceof Unauthorized || !refused) throw error;
    refused.textContent = error.message;
    refused.hidden = false;
    return;
  }
  if (refused) refused.hidden = true;
  traceState.shown = traces;
  const body = document.getElementById("trace-rows");
  if (!body) return;
  body.replaceChildren(...traces.map(traceRow));
  if (!traces.length) body.append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No traces match.")));
  document.getElementById("new-traces").hidden = true;
  document.getElementById("page-info").textContent =
    `${traceState.offset + 1}–${traceState.offset + traces.length}`;
}

async function pollTraces() {  // new traces arrive without moving what the user looks at
  if (!document.getElementById("trace-rows")) return;
  let latest;
  try {
    latest = await fetchTraces(0);
  } catch {
    return;  // loadTraces says what is wrong; the next poll tries again
  }
  const known = new Set(traceState.shown.map((t) => t.trace_id));
  const fresh = latest.filter((t) => !known.has(t.trace_id) &&
    (!traceState.shown.length || t.start_time >= traceState.shown[0].start_time));
  if (!fresh.length) return;
  if (traceState.offset === 0 && window.scrollY < 40) {
    const body = document.getElementById("trace-rows");
    if (!traceState.shown.length) body.replaceChildren();
    body.prepend(...fresh.map(traceRow));
    traceState.shown = [...fresh, ...traceState.shown];
  } else {
    const banner = document.getElementById("new-traces");
    banner.textContent = `${fresh.length} new trace${fresh.length > 1 ? "s" : ""}: show`;
    banner.hidden = false;
  }
}

// -- one trace: the waterfall ---------------------------------------------------------------
// Rows [span, depth, again] in tree order, built without recursion whatever the depth.
// Spans whose parent links form a cycle are shown from one span of the cycle, and the
// cycle is cut where a span would repeat: that row has again = true.
function spanTree(spans) {
  const ordered = [...spans].sort((a, b) => startMicros(a.start_time) - startMicros(b.start_time));
  const byId = new Map(ordered.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const span of ordered) {
    if (span.parent_span_id && byId.has(span.parent_span_id)) {
      if (!children.has(span.parent_span_id)) children.set(span.parent_span_id, []);
      children.get(span.parent_span_id).push(span);
    } else roots.push(span);
  }
  const rows = [];
  const shown = new Set();
  const grow = (start) => {
    const stack = [[start, 0]];
    while (stack.length) {
      const [span, depth] = stack.pop();
      if (shown.has(span)) {
        rows.push([span, depth, true]);
        continue;
      }
      shown.add(span);
      rows.push([span, depth, false]);
      const kids = children.get(span.span_id) || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
  };
  roots.forEach(grow);
  for (const span of ordered) {  // what is left hangs from a cycle of parent links
    if (shown.has(span)) continue;
    const seen = new Set();
    let at = span;
    while (!seen.has(at) && !shown.has(byId.get(at.parent_span_id))) {
      seen.add(at);
      at = byId.get(at.parent_span_id);
    }
    grow(seen.has(at) ? at : span);
  }
  return rows;
}

const INDENT_LEVELS = 40;  // deeper rows stay at this indent, their depth in the title

const duration = (s) => s.precise_duration_ms ?? s.duration_ms ?? 0;

async function traceView(traceId) {
  const trace = await api(`/api/traces/${encodeURIComponent(traceId)}`);
  const rows = spanTree(trace.spans);
  const t0 = Math.min(...rows.map(([s]) => startMicros(s.start_time)));
  const end = Math.max(...rows.map(([s]) => startMicros(s.start_time) + duration(s) * 1000));
  const total = Math.max(end - t0, 1);
  const panel = el("div", { class: "panel", id: "span-panel" });
  let selected = 0;
  const elements = rows.map(([span, depth, again], index) => {
    const isLlm = span.kind === "llm" || (!span.kind && span.model);
    const left = ((startMicros(span.start_time) - t0) / total) * 100;
    const width = ((duration(span) * 1000) / total) * 100;
    const meta = [];
    if (isLlm && span.model) meta.push(span.model);
    if (span.total_tokens !== null && span.total_tokens !== undefined) meta.push(`${count(span.total_tokens)} tok`);
    if (span.time_to_first_token_ms !== undefined) meta.push(`ttft ${ms(span.time_to_first_token_ms)}`);
    meta.push(ms(duration(span)));
    const bar = el("div", { class: `bar${isLlm ? " llm" : ""}${span.status === "ERROR" ? " error" : ""}`,
                            "data-left": left.toFixed(4), "data-width": width.toFixed(4) });
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    const label = el("div", { class: `label${span.status === "ERROR" ? " error" : ""}`,
                              title: `depth ${depth}` },
      again ? `↻ ${span.name}` : span.name,
      el("span", { class: "meta" }, again ? "shown above: the parent links form a cycle" : meta.join(" · ")));
    label.style.paddingLeft = `${6 + Math.min(depth, INDENT_LEVELS) * 14}px`;
    return el("div", { class: again ? "row again" : "row", "data-span-id": span.span_id,
                       onclick: () => select(index) }, label, el("div", { class: "track" }, bar));
  });
  const select = (index) => {
    elements[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    elements[selected].classList.add("selected");
    elements[selected].scrollIntoView({ block: "nearest" });
    panel.replaceChildren(...spanDetails(rows[selected][0]));
  };
  const keys = (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      select(selected + (event.key === "ArrowDown" ? 1 : -1));
    }
  };
  document.addEventListener("keydown", keys);
  cleanups.push(() => document.removeEventListener("keydown", keys));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = el("span", { class: "tick" }, ms((total / 1000) * f));
    tick.style.left = `${f * 100}%`;
    return tick;
  });
  const axis = el("div", { class: "axis" }, el("div", { class: "label muted" }, "span"),
    el("div", { class: "track" }, ...ticks));
  const root = rows[0] ? rows[0][0] : {};
  show(el("h2", {}, root.name || traceId, el("span", { class: "muted" }, `  ${trace.spans.length} spans · ${ms(total / 1000)} · ${traceId}`)),
    el("div", { class: "trace" }, el("div", { class: "waterfall", id: "waterfall" }, axis, ...elements), panel));
  if (rows.length) select(0);
}

function spanDetails(span) {
  const facts = [["name", span.name], ["kind", span.kind], ["status", span.status],
    ["error", span.error_message], ["duration", ms(duration(span))], ["model", span.model],
    ["tokens", span.total_tokens === null ? null : `${count(span.prompt_tokens)} in · ${count(span.completion_tokens)} out · ${count(span.total_tokens)} total`],
    ["time to first token", span.time_to_first_token_ms === undefined ? null : ms(span.time_to_first_token_ms)],
    ["prompt", span.prompt_key ? `${span.prompt_key} v${span.prompt_version ?? "?"}` : null],
    ["prompt A/B test", span.prompt_ab_test_key ? `${span.prompt_ab_test_key} variant ${span.prompt_variant_index}` : null],
    ["session", span.session_id], ["customer", span.customer_id], ["config", span.config_key],
    ["start", time(span.start_time)], ["span id", span.span_id]];
  const list = el("dl", {}, ...facts.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "error" ? "error" : null }, v)]));
  const out = [list];
  if ("input" in span) out.push(el("h2", {}, "Input"), el("div", { id: "span-input" }, folded(span.input)));
  if ("output" in span) out.push(el("h2", {}, "Output"), el("div", { id: "span-output" }, folded(span.output)));
  const attributes = Object.entries(span.attributes || {}).filter(([k]) => !k.startsWith("fallom.raw."));
  if (attributes.length) {
    out.push(el("h2", {}, "Attributes"), el("dl", {}, ...attributes.flatMap(([k, v]) =>
      [el("dt", { title: k }, k), el("dd", {}, jsonText(v))])));
  }
  return out;
}

// -- sessions -------------------------------------------------------------------------------
async function sessionsView() {
  const { sessions } = await api("/api/sessions?limit=200");
  show(el("table", { id: "sessions" }, el("thead", {}, el("tr", {}, ...["Session", "Customer", "Config", "Traces", "Tokens", "Errors", "First", "Last"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...sessions.map((s) => el("tr", { class: "clickable", onclick: () => { location.hash = `#/session/${encodeURIComponent(s.session_id)}`; } },
      el("td", {}, s.session_id), el("td", {}, s.customer_id || "–"), el("td", {}, s.config_key || "–"),
      el("td", { class: "num" }, count(s.traces)), el("td", { class: "num" }, count(s.total_tokens)),
      el("td", { class: s.errors ? "num error" : "num" }, count(s.errors)),
      el("td", {}, time(s.first_start || s.metrics_updated_at)),
      el("td", {}, time([s.last_start, s.metrics_updated_at].filter(Boolean).sort().pop())))))));
}

async function sessionView(sessionId) {
  const [session, { traces }] = await Promise.all([
    api(`/api/sessions/${encodeURIComponent(sessionId)}`),
    api(`/api/traces?${query({ session_id: sessionId, order: "asc", limit: 1000 })}`)]);
  show(el("h2", {}, `Session ${sessionId}`), ...metricsTable(session.metrics),
    traces.length ? el("table", { id: "session-traces" }, el("tbody", {}, ...traces.map(traceRow)))
      : el("p", { class: "muted" }, "No traces in this session."));
}

function metricsTable(metrics) {  // {config: {field: {value, updated_at}}}: fallom 0.2.7's trace.span
  const rows = Object.entries(metrics || {}).flatMap(([config, fields]) =>
    Object.entries(fields).map(([field, m]) => el("tr", { "data-metric": field },
      el("td", {}, field), el("td", { class: "metric-value" }, jsonText(m.value)),
      el("td", {}, config), el("td", {}, time(m.updated_at)))));
  if (!rows.length) return [];
  return [el("h2", {}, "Metrics"), el("table", { id: "session-metrics", class: "metrics" },
    el("thead", {}, el("tr", {}, ...["Metric", "Value", "Config", "Set at"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows)), el("h2", {}, "Traces")];
}

// -- experiments and prompts -----------------------------------------------------------------
const STAT_HEADERS = ["Sessions", "LLM calls", "p50", "p95", "Mean TTFT", "Tokens/call", "Error rate"];
const statCells = (s) => [count(s.sessions), count(s.llm_calls), ms(s.p50_ms), ms(s.p95_ms),
  ms(s.mean_ttft_ms), s.tokens_per_call === null ? "–" : s.tokens_per_call.toFixed(1),
  percent(s.error_rate)].map((v) => el("td", { class: "num" }, v));

async function experimentsView() {
  const data = await api("/api/experiments");
  const parts = [];
  for (const config of data.configs) {
    const current = config.current;
    const served = current && Array.isArray(current.variants)
      ? current.variants.map((v) => `${v.model} ${v.weight}%`).join(" · ") : "";
    parts.push(el("h2", {}, `Config ${config.key}`, el("span", { class: "muted" },
      current ? `  serving version ${current.version}: ${served}` : "  not in the catalog now")));
    for (const version of config.versions || []) {
      const variants = Array.isArray(version.variants)
        ? version.variants.map((v) => `${v.model} ${v.weight}%`).join(" · ") : "";
      parts.push(el("div", { class: "muted" }, `version ${version.version}: ${variants}`));
    }
    parts.push(el("table", { class: "experiment", "data-config": config.key },
      el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Variant"), ...STAT_HEADERS.map((h) => el("th", { class: "num" }, h)))),
      el("tbody", {}, ...config.variants.map((v) => el("tr", { "data-variant": v.variant, "data-version": v.version },
        el("td", {}, v.version), el("td", {}, v.variant), ...statCells(v))))));
  }
  if (data.prompt_tests.length) {
    parts.push(el("h2", {}, "Prompts and prompt A/B tests"), el("table", { id: "prompt-tests" },
      el("thead", {}, el("tr", {}, ...["A/B test", "Prompt", "Version", "Variant"].map((h) => el("th", {}, h)), ...STAT_HEADERS.map((h) => el("th", { class: "num" }, h)))),
      el("tbody", {}, ...data.prompt_tests.map((p) => el("tr", {}, el("td", {}, p.ab_test_key || "–"), el("td", {}, p.prompt_key),
        el("td", {}, p.prompt_version ?? "–"), el("td", {}, p.variant_index ?? "–"), ...statCells(p))))));
  }
  if (!parts.length) parts.push(el("p", { class: "muted" }, "No configs or prompt tests yet: start fallom serve with --config, and run code that calls fallom.models.get."));
  show(...parts);
}

async function promptsView() {
  const { prompts } = await api("/api/prompts");
  const parts = prompts.flatMap((p) => [el("h2", {}, p.key, el("span", { class: "muted" }, `  serving version ${p.current_version ?? "–"}`)),
    ...p.versions.slice().reverse().map((v) => el("details", { open: v.version === p.current_version },
      el("summary", {}, `version ${v.version}`), el("div", { class: "muted" }, "system"), el("pre", {}, v.system_prompt ?? ""),
      el("div", { class: "muted" }, "user"), el("pre", {}, v.user_template ?? "")))]);
  show(...(parts.length ? parts : [el("p", { class: "muted" }, "No prompts: start fallom serve with --config.")]));
}

// -- evaluations: runs uploaded by fallom.evals (any SDK) -----------------------------------
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

async function evalsView() {
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
  const rows = runs.flatMap((r) => [
    el("tr", { class: "clickable", "data-run-id": r.run_id, onclick: () => { location.hash = `#/eval/${encodeURIComponent(r.run_id)}`; } },
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
    el("button", { onclick: () => { evalState.offset = Math.max(0, evalState.offset - evalState.limit); route(); } }, "Newer"),
    el("button", { onclick: () => { evalState.offset += evalState.limit; route(); } }, "Older"), compare);
  show(el("table", { id: "eval-runs" }, el("thead", {}, el("tr", {}, ...["", "Name", "Time", "Model(s)", "Items"].map((h, i) => el("th", { class: i === 4 ? "num" : null }, h)),
    ...metrics.map((m) => el("th", { class: "num" }, m)))), el("tbody", {}, ...rows)), pager);
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

async function evalView(runId) {
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
    el("h2", {}, "Averages"), summary, el("h2", {}, "Items"), items);
}

const itemKey = (item) => JSON.stringify([item.model, item.input, item.system_message || ""]);

async function compareView(first, second) {
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
    el("table", { id: "eval-compare", class: "metrics" }, el("thead", {}, el("tr", {}, el("th", {}, "Metric"),
      head(previous, "before"), head(current, "now"), el("th", { class: "num" }, "Change"), el("th", {}, ""))),
    el("tbody", {}, ...rows)), el("h2", {}, "Items"), items);
}

// -- routing ----------------------------------------------------------------------------------
const cleanups = [];

async function route() {
  clearInterval(poller);
  while (cleanups.length) cleanups.pop()();
  const [view, id, other] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const section = { trace: "traces", session: "sessions", eval: "evals", compare: "evals" }[view] || view || "traces";
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === section);
  }
  try {
    if (view === "trace" && id) await traceView(id);
    else if (view === "sessions") await sessionsView();
    else if (view === "session" && id) await sessionView(id);
    else if (view === "experiments") await experimentsView();
    else if (view === "prompts") await promptsView();
    else if (view === "evals") await evalsView();
    else if (view === "eval" && id) await evalView(id);
    else if (view === "compare" && id && other) await compareView(id, other);
    else await tracesView();
    document.body.dataset.readyMs = performance.now().toFixed(0);  // for benchmarks/bench_ui.py
    document.body.dataset.ready = location.hash || "#/traces";
  } catch (error) {
    if (error instanceof Unauthorized) login();
    else show(el("p", { class: "error" }, `Could not load: ${error.message}`));
  }
}

// /evals/{run_id}, the address the SDKs print after an upload: that run, in this page.
const evalPath = /^\/evals(?:\/([^/]+))?\/?$/.exec(location.pathname);
if (evalPath) history.replaceState(null, "", evalPath[1] ? `/#/eval/${evalPath[1]}` : "/#/evals");
window.addEventListener("hashchange", route);
route();
