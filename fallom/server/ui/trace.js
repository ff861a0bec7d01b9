// One trace: its totals, the waterfall (resizable labels, collapsible subtrees) and the
// selected span's details, an LLM span's messages drawn as a chat.
import { api } from "./api.js";
import { chatView } from "./chat.js";
import { el, folded, idChip, onLeave, show } from "./dom.js";
import { count, jsonText, money, ms, startMicros, time, utcTitle } from "./format.js";
import { spanTree } from "./tree.js";

const INDENT_LEVELS = 40;  // deeper rows stay at this indent, their depth in the title
const WIDTH_KEY = "fallom.labelWidth";  // the label column's width, as last dragged
const MIN_LABEL = 140;
const FIT_SAMPLE = 40;  // labels measured to fit the column

const duration = (s) => Math.max(s.precise_duration_ms ?? s.duration_ms ?? 0, 0);  // no clock runs back
const isLlm = (s) => s.kind === "llm" || (!s.kind && !!s.model);
const known = (v) => v !== null && v !== undefined;

export async function traceView(traceId) {
  const trace = await api(`/api/traces/${encodeURIComponent(traceId)}`);
  const rows = spanTree(trace.spans);
  const t0 = Math.min(...rows.map(([s]) => startMicros(s.start_time)));
  const end = Math.max(...rows.map(([s]) => startMicros(s.start_time) + duration(s) * 1000));
  const total = Math.max(end - t0, 1);
  const panel = el("div", { class: "panel", id: "span-panel" });
  const fall = waterfall(rows, t0, total, panel);
  show(header(trace, rows, total, traceId), el("div", { class: "trace" }, fall.node, panel));
  fall.fitLabels();
  if (rows.length) fall.select(0);
}

// -- the header: name, spans, duration, id, and the trace's tokens and cost --------------

// The API's totals; computed from the LLM spans where a server does not send them yet.
export function totalsOf(trace) {
  if (trace.totals) return trace.totals;
  const llm = trace.spans.filter(isLlm);
  const sum = (field) => llm.some((s) => known(s[field])) ?
    llm.reduce((n, s) => n + (s[field] ?? 0), 0) : null;
  return { input_tokens: sum("prompt_tokens"), output_tokens: sum("completion_tokens"),
           total_tokens: sum("total_tokens"), cost_usd: sum("cost_usd"), unpriced_models: [] };
}

function totalsLine(totals) {
  const unpriced = totals.unpriced_models || [];
  return el("div", { class: "trace-totals", id: "trace-totals" },
    el("span", { "data-total": "tokens" }, `${count(totals.input_tokens)} in · ` +
      `${count(totals.output_tokens)} out · ${count(totals.total_tokens)} tokens`),
    known(totals.cost_usd) ? el("span", { class: "cost", "data-total": "cost" }, money(totals.cost_usd)) : null,
    unpriced.length ? el("span", { class: "muted unpriced", title: unpriced.join(", ") },
      `${unpriced.length} model${unpriced.length === 1 ? "" : "s"} unpriced`) : null);
}

function header(trace, rows, total, traceId) {
  const root = rows[0] ? rows[0][0] : {};
  return el("div", { class: "trace-head" },
    el("h2", { class: "trace-title" }, root.name || traceId),
    el("div", { class: "trace-facts muted" },
      el("span", {}, `${trace.spans.length} spans`), el("span", {}, ms(total / 1000)),
      root.start_time ? el("span", { title: utcTitle(root.start_time) }, time(root.start_time)) : null,
      idChip(traceId)),
    totalsLine(totalsOf(trace)));
}

// -- the waterfall -----------------------------------------------------------------------

function metaOf(span) {
  const meta = [];
  if (isLlm(span) && span.model) meta.push(span.model);
  if (known(span.total_tokens)) meta.push(`${count(span.total_tokens)} tok`);
  if (known(span.time_to_first_token_ms)) meta.push(`ttft ${ms(span.time_to_first_token_ms)}`);
  meta.push(ms(duration(span)));
  return meta.join(" · ");
}

function bar(span, t0, total) {
  const left = ((startMicros(span.start_time) - t0) / total) * 100;
  const width = ((duration(span) * 1000) / total) * 100;
  const node = el("div", { class: `bar${isLlm(span) ? " llm" : ""}${span.status === "ERROR" ? " error" : ""}`,
                           "data-left": left.toFixed(4), "data-width": width.toFixed(4) });
  node.style.left = `${left}%`;
  node.style.width = `${width}%`;
  return node;
}

// A row's label: the name first (tests read it as the label's first child), the ▸/▾
// toggle drawn before it (CSS order), then model, tokens and duration; all of it on hover.
function label(span, depth, again, toggle) {
  const name = again ? `↻ ${span.name}` : span.name;
  const meta = again ? "shown above: the parent links form a cycle" : metaOf(span);
  const node = el("div", { class: `label${span.status === "ERROR" ? " error" : ""}`,
                           title: `${name} · ${meta}${depth ? ` (depth ${depth})` : ""}` },
    el("span", { class: "name" }, name), toggle || el("span", { class: "twisty" }),
    el("span", { class: "meta" }, meta));
  node.style.paddingLeft = `${6 + Math.min(depth, INDENT_LEVELS) * 14}px`;
  return node;
}

function axis(total, handle) {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = el("span", { class: "tick" }, ms((total / 1000) * f));
    tick.style.left = `${f * 100}%`;
    return tick;
  });
  return el("div", { class: "axis" }, el("div", { class: "label muted" }, "span", handle),
    el("div", { class: "track" }, ...ticks));
}

// Each row's parent row (-1 for a root) and whether it has rows under it.
function shape(rows) {
  const parents = [];
  const stack = [];
  rows.forEach(([, depth], i) => {
    while (stack.length && rows[stack[stack.length - 1]][1] >= depth) stack.pop();
    parents.push(stack.length ? stack[stack.length - 1] : -1);
    stack.push(i);
  });
  const hasKids = rows.map(([, depth], i) => i + 1 < rows.length && rows[i + 1][1] > depth);
  return { parents, hasKids };
}

function waterfall(rows, t0, total, panel) {
  const { parents, hasKids } = shape(rows);
  const collapsed = new Set();
  let selected = 0;
  const elements = rows.map(([span, depth, again], index) => {
    const toggle = hasKids[index] ? el("button", {
      type: "button", class: "twisty", "aria-expanded": "true", title: "collapse (←) / expand (→)",
      onclick: (event) => {
        event.stopPropagation();
        setCollapsed(index, !collapsed.has(index));
        select(index);
      },
    }, "▾") : null;
    return el("div", { class: again ? "row again" : "row", "data-span-id": span.span_id,
                       "data-depth": depth, onclick: () => select(index) },
      label(span, depth, again, toggle), el("div", { class: "track" }, bar(span, t0, total)));
  });
  const handle = el("div", { class: "resize-handle", id: "label-resizer", role: "separator",
                             tabindex: 0, "aria-orientation": "vertical",
                             title: "drag to resize the labels (double-click: fit)" });
  const node = el("div", { class: "waterfall", id: "waterfall" }, axis(total, handle), ...elements);
  const labels = resizableLabels(node, handle);

  const refresh = () => {  // hide the rows under a collapsed row, in one pass
    let hideBelow = Infinity;
    rows.forEach(([, depth], i) => {
      const hidden = depth > hideBelow;
      elements[i].hidden = hidden;
      if (!hidden) hideBelow = collapsed.has(i) ? depth : Infinity;
    });
  };
  const setCollapsed = (index, close) => {
    if (!hasKids[index]) return;
    if (close) collapsed.add(index);
    else collapsed.delete(index);
    const toggle = elements[index].querySelector("button.twisty");
    toggle.textContent = close ? "▸" : "▾";
    toggle.setAttribute("aria-expanded", String(!close));
    elements[index].classList.toggle("collapsed", close);
    refresh();
    if (elements[selected].hidden) select(index);
  };
  const select = (index) => {
    elements[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    elements[selected].classList.add("selected");
    elements[selected].scrollIntoView({ block: "nearest" });
    panel.replaceChildren(...spanDetails(rows[selected][0]));
  };
  const step = (by) => {  // the next (or previous) row that is shown
    for (let i = selected + by; i >= 0 && i < rows.length; i += by) {
      if (!elements[i].hidden) return select(i);
    }
  };
  const keys = (event) => {
    if (event.target instanceof Element && event.target.closest("input, textarea, select, .resize-handle")) return;
    const i = selected;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") step(event.key === "ArrowDown" ? 1 : -1);
    else if (event.key === "ArrowLeft") {
      if (hasKids[i] && !collapsed.has(i)) setCollapsed(i, true);
      else if (parents[i] >= 0) select(parents[i]);
    } else if (event.key === "ArrowRight") {
      if (collapsed.has(i)) setCollapsed(i, false);
      else if (hasKids[i]) step(1);
    } else return;
    event.preventDefault();
  };
  document.addEventListener("keydown", keys);
  onLeave(() => document.removeEventListener("keydown", keys));
  return { node, select, fitLabels: labels.fit };
}

// The label column: as wide as its widest label at first, then as dragged (kept in
// localStorage), never wider than the waterfall leaves room for the bars.
function resizableLabels(box, handle) {
  let chosen = Number(localStorage.getItem(WIDTH_KEY)) || null;
  let natural = 300;
  const clamp = (px) => Math.round(Math.max(MIN_LABEL, Math.min(px, box.clientWidth * 0.7)));
  const apply = () => {
    const px = Math.min(clamp(chosen ?? natural), Math.max(box.clientWidth - 60, 80));
    box.style.setProperty("--label-w", `${px}px`);
    box.dataset.labelWidth = String(px);
  };
  // Measured once, on the labels likeliest to be widest by their text and indent: rows
  // off screen are not laid out (content-visibility), and measuring all 2,000 would be.
  const fit = () => {
    const guess = (l) => l.textContent.length + 2 * Number(l.parentNode.dataset.depth || 0);
    const widest = [...box.querySelectorAll(".row .label")].sort((a, b) => guess(b) - guess(a));
    box.style.setProperty("--label-w", "max-content");
    natural = Math.max(...widest.slice(0, FIT_SAMPLE).map((l) => l.scrollWidth), 0) + 8;
    apply();
  };
  const choose = (px) => {
    chosen = clamp(px);
    localStorage.setItem(WIDTH_KEY, String(chosen));
    apply();
  };
  handle.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    const startX = event.clientX;
    const startWidth = Number(box.dataset.labelWidth);
    handle.setPointerCapture(event.pointerId);
    const move = (e) => choose(startWidth + e.clientX - startX);
    const up = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
  });
  handle.addEventListener("dblclick", () => {
    chosen = null;
    localStorage.removeItem(WIDTH_KEY);
    apply();
  });
  handle.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    choose(Number(box.dataset.labelWidth) + (event.key === "ArrowRight" ? 16 : -16));
  });
  window.addEventListener("resize", apply);
  onLeave(() => window.removeEventListener("resize", apply));
  return { fit };
}

// -- the span panel ----------------------------------------------------------------------

function facts(span) {
  return [["name", span.name], ["kind", span.kind], ["status", span.status],
    ["error", span.error_message], ["duration", ms(duration(span))], ["model", span.model],
    ["tokens", known(span.total_tokens) ? `${count(span.prompt_tokens)} in · ${count(span.completion_tokens)} out · ${count(span.total_tokens)} total` : null],
    ["cost", known(span.cost_usd) ? money(span.cost_usd) : null],
    ["time to first token", known(span.time_to_first_token_ms) ? ms(span.time_to_first_token_ms) : null],
    ["prompt", span.prompt_key ? `${span.prompt_key} v${span.prompt_version ?? "?"}` : null],
    ["prompt A/B test", span.prompt_ab_test_key ? `${span.prompt_ab_test_key} variant ${span.prompt_variant_index}` : null],
    ["session", span.session_id], ["customer", span.customer_id], ["config", span.config_key],
    ["start", time(span.start_time)], ["span id", span.span_id]];
}

// A name above (narrow) or beside its value; a long dotted name wraps, whole on hover.
function pairs(entries) {
  return el("dl", { class: "pairs" }, ...entries.flatMap(([k, v]) =>
    [el("dt", { title: k }, k), el("dd", { class: k === "error" ? "error" : null }, v)]));
}

// The raw input and output (today's folded JSON), shown alone or behind the chat's toggle.
function rawSection(span) {
  const out = [];
  if ("input" in span) out.push(el("h2", {}, "Input"), el("div", { id: "span-input" }, folded(span.input)));
  if ("output" in span) out.push(el("h2", {}, "Output"), el("div", { id: "span-output" }, folded(span.output)));
  return out;
}

function messages(span) {
  const chat = chatView(span);
  if (!chat) return rawSection(span);
  chat.id = "span-chat";
  const raw = el("div", { id: "span-raw", hidden: true }, ...rawSection(span));
  const toggle = el("button", { type: "button", id: "raw-toggle", "aria-pressed": "false" }, "Raw JSON");
  toggle.addEventListener("click", () => {
    raw.hidden = !raw.hidden;
    chat.hidden = !raw.hidden;
    toggle.setAttribute("aria-pressed", String(!raw.hidden));
    toggle.textContent = raw.hidden ? "Raw JSON" : "Chat";
  });
  return [el("div", { class: "messages-head" }, el("h2", {}, "Messages"), toggle), chat, raw];
}

function spanDetails(span) {
  const out = [pairs(facts(span).filter(([, v]) => v !== null && v !== undefined && v !== "")),
    ...messages(span)];
  const attributes = Object.entries(span.attributes || {}).filter(([k]) => !k.startsWith("fallom.raw."));
  if (attributes.length) {
    out.push(el("h2", {}, "Attributes"),
      el("div", { id: "span-attributes" }, pairs(attributes.map(([k, v]) => [k, jsonText(v)]))));
  }
  return out;
}
