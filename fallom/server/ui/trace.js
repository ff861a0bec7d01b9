// One trace: the waterfall and the selected span's details.
import { api } from "./api.js";
import { el, folded, onLeave, show } from "./dom.js";
import { count, jsonText, ms, startMicros, time } from "./format.js";
import { spanTree } from "./tree.js";

const INDENT_LEVELS = 40;  // deeper rows stay at this indent, their depth in the title

const duration = (s) => s.precise_duration_ms ?? s.duration_ms ?? 0;

export async function traceView(traceId) {
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
  onLeave(() => document.removeEventListener("keydown", keys));
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
