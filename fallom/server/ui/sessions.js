// Sessions: the list, and one session read as the conversation across its traces.
import { api } from "./api.js";
import { chatView } from "./chat.js";
import { el, emptyState, folded, keyNav, rowLink, show, tableBox } from "./dom.js";
import { count, jsonText, money, ms, time, utcTitle } from "./format.js";

const when = (iso) => el("span", { title: iso ? utcTitle(iso) : null }, iso ? time(iso) : "–");
const lastOf = (s) => [s.last_start, s.metrics_updated_at].filter(Boolean).sort().pop();
const td = (value, cls) => el("td", { class: cls || null }, value);

export async function sessionsView() {
  const { sessions } = await api("/api/sessions?limit=200");
  if (!sessions.length) {
    show(el("h2", {}, "Sessions"), emptyState("sessions"));
    return;
  }
  const headers = ["Session", "Customer", "Config", "Traces", "Tokens in", "Tokens out", "Cost",
    "Errors", "First", "Last"];
  const body = el("tbody", {}, ...sessions.map((s) => rowLink(`#/session/${encodeURIComponent(s.session_id)}`,
    el("td", { class: "session-id", title: s.session_id }, s.session_id), td(s.customer_id || "–"),
    td(s.config_key || "–"), td(count(s.traces), "num"), td(count(s.input_tokens), "num"),
    td(count(s.output_tokens), "num"), td(money(s.cost_usd), "num"),
    td(count(s.errors), s.errors ? "num error" : "num"),
    td(when(s.first_start || s.metrics_updated_at)), td(when(lastOf(s))))));
  show(el("h2", {}, "Sessions"), tableBox(el("table", { id: "sessions", class: "stats" },
    el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", { class: i > 2 && i < 8 ? "num" : null }, h)))),
    body)));
  keyNav(body);
}

export async function sessionView(sessionId) {
  const session = await api(`/api/sessions/${encodeURIComponent(sessionId)}`);
  const turns = session.turns || [];
  show(...[el("h2", { id: "session-title" }, "Session ", el("span", { class: "session-id" }, sessionId)),
    sessionFigures(session), ...metricsTable(session.metrics),
    el("h2", {}, "Conversation"),
    session.truncated ? el("p", { class: "muted", id: "session-truncated" },
      `The first ${count(turns.length)} traces; open the traces list filtered by this session for the rest.`) : null,
    turns.length ? el("ol", { id: "conversation", class: "conversation" }, ...turns.map(turnView))
      : el("p", { class: "muted" }, "No traces in this session.")].filter(Boolean));
}

function sessionFigures(s) {  // the header: what the session cost and how it went
  const t = s.totals || {};
  const unpriced = (t.unpriced_models || []).length  // the cost leaves these calls out: say so
    ? `not counted: ${t.unpriced_models.join(", ")} (no price in the catalog)` : null;
  const fact = (id, label, value, title) => el("div", { class: "figure", id: `session-${id}`, title },
    el("div", { class: "figure-value" }, value), el("div", { class: "muted" }, label));
  return el("div", { class: "figures", id: "session-totals" },
    fact("traces", "traces", count(s.traces)),
    fact("tokens-in", "tokens in", count(t.input_tokens)),
    fact("tokens-out", "tokens out", count(t.output_tokens)),
    fact("cost", unpriced ? "cost (some calls unpriced)" : "cost", money(t.cost_usd), unpriced),
    fact("errors", "errors", count(s.errors)),
    fact("first", "first", time(s.first_start), s.first_start ? utcTitle(s.first_start) : null),
    fact("last", "last", time(lastOf(s)), lastOf(s) ? utcTitle(lastOf(s)) : null),
    s.customer_id ? fact("customer", "customer", s.customer_id) : null,
    s.config_key ? fact("config", "config", s.config_key) : null);
}

function turnView(turn) {  // one trace of the session: its heading, then its LLM calls as a chat
  const facts = [ms(turn.duration_ms), turn.total_tokens ? `${count(turn.total_tokens)} tokens` : null,
    turn.cost_usd === null || turn.cost_usd === undefined ? null : money(turn.cost_usd)].filter(Boolean);
  return el("li", { class: "turn", "data-trace-id": turn.trace_id },
    el("div", { class: "turn-head" },
      el("a", { href: `#/trace/${turn.trace_id}`, class: "turn-link" }, turn.name || "trace"),
      el("span", { class: `status-${turn.status}` }, turn.status), when(turn.start_time),
      el("span", { class: "muted" }, facts.join(" · "))),
    ...(turn.llm || []).map(callView));
}

function callView(span) {  // a call as a chat when it has messages, else its input and output
  const meta = el("div", { class: "call-meta muted" }, [span.name, span.model].filter(Boolean).join(" · "),
    span.error_message ? el("span", { class: "error" }, ` ${span.error_message}`) : null);
  const chat = chatView(span);
  if (chat) return el("div", { class: "call", "data-span-id": span.span_id }, meta, chat);
  return el("div", { class: "call", "data-span-id": span.span_id }, meta,
    span.input === null || span.input === undefined ? null : folded(span.input),
    span.output === null || span.output === undefined ? null : folded(span.output));
}

function metricsTable(metrics) {  // {config: {field: {value, updated_at}}}: fallom 0.2.7's trace.span
  const rows = Object.entries(metrics || {}).flatMap(([config, fields]) =>
    Object.entries(fields).map(([field, m]) => el("tr", { "data-metric": field },
      el("td", {}, field), el("td", { class: "metric-value" }, jsonText(m.value)),
      el("td", {}, config), el("td", {}, when(m.updated_at)))));
  if (!rows.length) return [];
  return [el("h2", {}, "Metrics"), tableBox(el("table", { id: "session-metrics", class: "metrics" },
    el("thead", {}, el("tr", {}, ...["Metric", "Value", "Config", "Set at"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows)))];
}
