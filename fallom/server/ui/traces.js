// The traces list: filters, paging, and new traces arriving while it is open.
import { api, Unauthorized } from "./api.js";
import { el, onLeave, show } from "./dom.js";
import { count, ms, query, time } from "./format.js";

const POLL_MS = 3000;
// -- traces ---------------------------------------------------------------------------------
const FILTERS = [["since", "start from (ISO)"], ["name", "root name"], ["q", "any span name"],
  ["session_id", "session"], ["customer_id", "customer"], ["config_key", "config"],
  ["model", "model"], ["min_duration_ms", "min ms"], ["min_tokens", "min tokens"],
  ["min_spans", "min spans"]];
const traceState = { filters: {}, offset: 0, limit: 50, shown: [] };

export async function tracesView() {
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
  const poller = setInterval(pollTraces, POLL_MS);
  onLeave(() => clearInterval(poller));
}

export function traceRow(t) {
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
