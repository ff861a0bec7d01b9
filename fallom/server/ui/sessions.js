// Sessions: the list, and one session's metrics and traces.
import { api } from "./api.js";
import { el, show } from "./dom.js";
import { count, jsonText, query, time } from "./format.js";
import { traceRow } from "./traces.js";

export async function sessionsView() {
  const { sessions } = await api("/api/sessions?limit=200");
  show(el("table", { id: "sessions" }, el("thead", {}, el("tr", {}, ...["Session", "Customer", "Config", "Traces", "Tokens", "Errors", "First", "Last"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...sessions.map((s) => el("tr", { class: "clickable", onclick: () => { location.hash = `#/session/${encodeURIComponent(s.session_id)}`; } },
      el("td", {}, s.session_id), el("td", {}, s.customer_id || "–"), el("td", {}, s.config_key || "–"),
      el("td", { class: "num" }, count(s.traces)), el("td", { class: "num" }, count(s.total_tokens)),
      el("td", { class: s.errors ? "num error" : "num" }, count(s.errors)),
      el("td", {}, time(s.first_start || s.metrics_updated_at)),
      el("td", {}, time([s.last_start, s.metrics_updated_at].filter(Boolean).sort().pop())))))));
}

export async function sessionView(sessionId) {
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
