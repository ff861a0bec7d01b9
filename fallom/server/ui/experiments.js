// Experiments: each config's variants and prompt A/B tests, with their calls' statistics.
import { api } from "./api.js";
import { el, show, tableBox } from "./dom.js";
import { count, ms, percent } from "./format.js";

const STAT_HEADERS = ["Sessions", "LLM calls", "p50", "p95", "Mean TTFT", "Tokens/call", "Error rate"];
const statCells = (s) => [count(s.sessions), count(s.llm_calls), ms(s.p50_ms), ms(s.p95_ms),
  ms(s.mean_ttft_ms), s.tokens_per_call === null ? "–" : s.tokens_per_call.toFixed(1),
  percent(s.error_rate)].map((v) => el("td", { class: "num" }, v));

const weights = (variants) => (Array.isArray(variants)
  ? variants.map((v) => `${v.model} ${v.weight}%`).join(" · ") : "");

// Every variant of every version, once: the API's rows, and a zero row for a variant no
// session was assigned to yet (so a new variant shows before its first session). Versions are
// text in assignments and numbers in the catalog: compared as text.
function variantRows(config) {
  const rows = new Map(config.variants.map((v) => [`${v.version}\u0000${v.variant}`, v]));
  for (const version of config.versions || []) {
    for (const variant of Array.isArray(version.variants) ? version.variants : []) {
      const key = `${version.version}\u0000${variant.model}`;
      if (!rows.has(key)) rows.set(key, { version: String(version.version), variant: variant.model, sessions: 0,
        llm_calls: 0, p50_ms: null, p95_ms: null, mean_ttft_ms: null, tokens_per_call: null, error_rate: null });
    }
  }
  return [...rows.values()].sort((a, b) => Number(a.version) - Number(b.version) || String(a.variant).localeCompare(b.variant));
}

export async function experimentsView() {
  const data = await api("/api/experiments");
  const parts = [];
  for (const config of data.configs) {
    const current = config.current;
    parts.push(el("h2", {}, `Config ${config.key}`, el("span", { class: "muted" },
      current ? `  serving version ${current.version}` : "  not in the catalog now")));
    const versions = new Map((config.versions || []).map((v) => [v.version, v]));
    if (current && !versions.has(current.version)) versions.set(current.version, current);
    parts.push(el("ul", { class: "versions", "data-config": config.key }, ...[...versions.values()].map((v) =>
      el("li", { "data-version": v.version }, `version ${v.version}: ${weights(v.variants)}`,
        current && current.version === v.version ? el("span", { class: "muted" }, " (serving)") : null))));
    parts.push(tableBox(el("table", { class: "experiment stats", "data-config": config.key },
      el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Variant"), ...STAT_HEADERS.map((h) => el("th", { class: "num" }, h)))),
      el("tbody", {}, ...variantRows({ ...config, versions: [...versions.values()] }).map((v) =>
        el("tr", { "data-variant": v.variant, "data-version": v.version, class: v.sessions ? null : "muted" },
          el("td", {}, v.version), el("td", {}, v.variant), ...statCells(v)))))));
  }
  if (data.prompt_tests.length) {
    parts.push(el("h2", {}, "Prompts and prompt A/B tests"), tableBox(el("table", { id: "prompt-tests", class: "stats" },
      el("thead", {}, el("tr", {}, ...["A/B test", "Prompt", "Version", "Variant"].map((h) => el("th", {}, h)), ...STAT_HEADERS.map((h) => el("th", { class: "num" }, h)))),
      el("tbody", {}, ...data.prompt_tests.map((p) => el("tr", {}, el("td", {}, p.ab_test_key || "–"), el("td", {}, p.prompt_key),
        el("td", {}, p.prompt_version ?? "–"), el("td", {}, p.variant_index ?? "–"), ...statCells(p)))))));
  }
  if (!parts.length) parts.push(el("p", { class: "muted" }, "No configs or prompt tests yet: start fallom serve with --config, and run code that calls fallom.models.get."));
  show(...parts);
}
