// The traces list: search, time range, filters (kept in the address), paging, and new traces
// arriving while it is open.
import { api, login, Unauthorized } from "./api.js";
import { el, emptyState, idChip, keyNav, onLeave, rowLink, show, tableBox } from "./dom.js";
import { count, fromLocalInput, localInput, ms, query, time, utcTitle, zoneName } from "./format.js";

const POLL_MS = 3000;
const SEARCH_PAUSE_MS = 300;  // typing in the search box asks once the typing pauses
const RANGES = [["", "all time"], ["15m", "last 15 min"], ["1h", "last hour"],
  ["24h", "last 24 hours"], ["7d", "last 7 days"], ["custom", "custom range…"]];
const MORE = [["name", "root name"], ["session_id", "session"], ["customer_id", "customer"],
  ["config_key", "config"], ["model", "model"], ["min_duration_ms", "min ms"],
  ["min_tokens", "min tokens"], ["min_spans", "min spans"]];
const KEPT = ["q", "since", "until", "status", ...MORE.map(([name]) => name)];
// The columns, what people scan first: [header, class, numeric]
const COLUMNS = [["Time", "time"], ["Name", "name"], ["Status", "status"],
  ["Duration", "duration", true], ["Tokens", "tokens", true], ["Model", "model"],
  ["Session", "session"], ["Customer", "customer"], ["Config", "config"], ["Spans", "spans", true]];
const state = { filters: {}, offset: 0, limit: 50, shown: [] };

const isRelative = (since) => RANGES.some(([v]) => v && v !== "custom" && v === since);

// The address keeps the filters: a reload or a shared link shows the same list.
function remember() {
  const kept = query({ ...state.filters, offset: state.offset || "" });
  history.replaceState(null, "", `#/traces${kept ? `?${kept}` : ""}`);
}

function refilter(changes) {
  for (const [name, value] of Object.entries(changes)) {
    if (value) state.filters[name] = value;
    else delete state.filters[name];
  }
  state.offset = 0;
  remember();
  return loadTraces();
}

function searchBox() {
  let pause = null;
  const box = el("input", { type: "search", name: "q", class: "search", value: state.filters.q || "",
    placeholder: "Search names, inputs, outputs, attributes", "aria-label": "search traces" });
  const now = () => { clearTimeout(pause); if ((state.filters.q || "") !== box.value.trim()) refilter({ q: box.value.trim() }); };
  box.addEventListener("input", () => { clearTimeout(pause); pause = setTimeout(now, SEARCH_PAUSE_MS); });
  box.addEventListener("change", now);
  onLeave(() => clearTimeout(pause));
  return box;
}

function timeRange() {  // relative ranges sent as since=15m..., custom as two ISO instants
  const { since = "", until = "" } = state.filters;
  const chosen = !since && !until ? "" : isRelative(since) && !until ? since : "custom";
  const from = el("input", { type: "datetime-local", name: "from", step: 1, value: localInput(since),
    "aria-label": "from (local time)" });
  const to = el("input", { type: "datetime-local", name: "to", step: 1, value: localInput(until),
    "aria-label": "to (local time)" });
  const custom = el("span", { class: "custom-range", id: "custom-range", hidden: chosen !== "custom" },
    from, el("span", { class: "muted" }, "to"), to);
  const fromCustom = () => refilter({ since: fromLocalInput(from.value), until: fromLocalInput(to.value) });
  from.addEventListener("change", fromCustom);
  to.addEventListener("change", fromCustom);
  const select = el("select", { name: "range", "aria-label": "time range", onchange: (event) => {
    const value = event.target.value;
    custom.hidden = value !== "custom";
    if (value === "custom") { if (from.value || to.value) fromCustom(); }
    else refilter({ since: value, until: "" });
  } }, ...RANGES.map(([value, label]) => el("option", { value, selected: value === chosen }, label)));
  return [select, custom];
}

function moreFilters() {
  const inputs = MORE.map(([name, hint]) => el("input", { name, placeholder: hint, "aria-label": hint,
    value: state.filters[name] || "", onchange: (event) => refilter({ [name]: event.target.value.trim() }) }));
  const set = MORE.filter(([name]) => state.filters[name]).length;
  return el("details", { class: "more-filters", id: "more-filters", open: set > 0 },
    el("summary", {}, set ? `More filters (${set})` : "More filters"), el("div", { class: "filters" }, ...inputs));
}

export async function tracesView(params = {}) {
  state.filters = Object.fromEntries(KEPT.filter((k) => params[k]).map((k) => [k, params[k]]));
  state.offset = Math.max(0, Number.parseInt(params.offset, 10) || 0);
  const status = el("select", { name: "status", "aria-label": "status",
                                onchange: (event) => refilter({ status: event.target.value }) },
  ...["", "OK", "ERROR"].map((v) => el("option", { value: v, selected: (state.filters.status || "") === v }, v || "any status")));
  const banner = el("div", { class: "banner", id: "new-traces", hidden: true, role: "button", tabindex: 0,
                             onclick: () => { window.scrollTo(0, 0); loadTraces(); },
                             onkeydown: (event) => { if (event.key === "Enter") event.target.click(); } });
  const body = el("tbody", { id: "trace-rows" });
  const table = el("table", { id: "traces", class: "cards" }, el("thead", {}, el("tr", {},
    ...COLUMNS.map(([h, name, numeric]) => el("th", { class: `col-${name}${numeric ? " num" : ""}`,
      title: name === "time" ? "your browser's time zone; the UTC time on hover" : null },
    name === "time" ? `${h} (${zoneName()})` : h)))), body);
  const pager = el("div", { class: "pager" },
    el("button", { id: "prev", onclick: () => page(-1) }, "Newer"),
    el("button", { id: "next", onclick: () => page(1) }, "Older"),
    el("span", { class: "muted", id: "page-info" }));
  const refused = el("p", { class: "error", id: "trace-error", hidden: true, role: "alert" });
  show(el("div", { class: "filters" }, searchBox(), ...timeRange(), status), moreFilters(), refused,
    banner, el("div", { id: "traces-empty", hidden: true }),
    el("div", { id: "traces-list" }, tableBox(table), pager));
  keyNav(table);
  await loadTraces();
  const poller = setInterval(pollTraces, POLL_MS);
  onLeave(() => clearInterval(poller));
}

function page(direction) {
  state.offset = Math.max(0, state.offset + direction * state.limit);
  remember();
  loadTraces();
}

function cell(name, value, attrs = {}) {
  const header = COLUMNS.find(([, n]) => n === name);
  const empty = value === "–" || value === "" || value === null || value === undefined;
  return el("td", { ...attrs, class: `col-${name}${header[2] ? " num" : ""}${empty ? " empty" : ""}${attrs.class ? ` ${attrs.class}` : ""}`,
                    "data-label": header[0] }, empty ? "–" : value);
}

export function traceRow(t) {
  const session = t.session_id && t.session_id !== t.trace_id ? t.session_id : null;
  const row = rowLink(`#/trace/${encodeURIComponent(t.trace_id)}`,
    cell("time", time(t.start_time), { title: utcTitle(t.start_time) }),
    cell("name", t.root_name || "?", { title: t.root_name || null }),
    cell("status", el("span", { class: `badge status-${t.status}` }, t.status), { title: t.error_message || null }),
    cell("duration", ms(t.duration_ms)), cell("tokens", count(t.total_tokens)),
    cell("model", (t.models || []).join(", "), { title: (t.models || []).join(", ") || null }),
    cell("session", session && idChip(session)),
    cell("customer", t.customer_id, { title: t.customer_id || null }),
    cell("config", t.config_key), cell("spans", count(t.spans)));
  row.dataset.traceId = t.trace_id;
  return row;
}

async function fetchTraces(offset) {
  return (await api(`/api/traces?${query({ ...state.filters, limit: state.limit, offset })}`)).traces;
}

let asked = 0;  // the latest listing asked for: an earlier answer arriving later is dropped

async function loadTraces() {
  const refused = document.getElementById("trace-error");
  const mine = ++asked;
  let traces;
  try {
    traces = await fetchTraces(state.offset);
  } catch (error) {  // a filter the server refuses: say why, keep the filters to fix it
    if (mine !== asked) return;
    if (error instanceof Unauthorized || !refused) throw error;
    refused.textContent = error.message;
    refused.hidden = false;
    return;
  }
  if (mine !== asked) return;  // the filters changed while it was on its way
  if (refused) refused.hidden = true;
  const body = document.getElementById("trace-rows");
  if (!body) return;
  state.shown = traces;
  body.replaceChildren(...traces.map(traceRow));
  const filtered = Object.keys(state.filters).length > 0;
  if (!traces.length && (filtered || state.offset)) {
    body.append(el("tr", { class: "no-rows" }, el("td", { colspan: COLUMNS.length, class: "muted" },
      state.offset ? "No older traces." : "No traces match these filters.")));
  }
  showEmpty(!traces.length && !filtered && !state.offset);
  document.getElementById("new-traces").hidden = true;
  document.getElementById("prev").disabled = state.offset === 0;
  document.getElementById("next").disabled = traces.length < state.limit;
  document.getElementById("page-info").textContent = traces.length
    ? `${count(state.offset + 1)}–${count(state.offset + traces.length)}` : "";
}

function showEmpty(empty) {  // no trace at all: how to send one, instead of an empty table
  const holder = document.getElementById("traces-empty");
  if (empty && !holder.firstChild) holder.append(emptyState("traces"));
  holder.hidden = !empty;
  document.getElementById("traces-list").hidden = empty;
}

async function pollTraces() {  // new traces arrive without moving what the user looks at
  const mine = asked;
  if (!document.getElementById("trace-rows")) return;
  let latest;
  try {
    latest = await fetchTraces(0);
  } catch (error) {
    if (error instanceof Unauthorized) login(error.refused);
    return;  // else loadTraces says what is wrong; the next poll tries again
  }
  const known = new Set(state.shown.map((t) => t.trace_id));
  const fresh = latest.filter((t) => !known.has(t.trace_id) &&
    (!state.shown.length || t.start_time >= state.shown[0].start_time));
  if (!fresh.length || mine !== asked || !document.getElementById("trace-rows")) return;  // or refiltered meanwhile
  if (state.offset === 0 && window.scrollY < 40) {
    const body = document.getElementById("trace-rows");
    if (!state.shown.length) body.replaceChildren();
    showEmpty(false);
    body.prepend(...fresh.map(traceRow));
    state.shown = [...fresh, ...state.shown];
    document.getElementById("page-info").textContent = `1–${count(state.shown.length)}`;
  } else {
    const banner = document.getElementById("new-traces");
    banner.textContent = `${fresh.length} new trace${fresh.length > 1 ? "s" : ""}: show`;
    banner.hidden = false;
  }
}
