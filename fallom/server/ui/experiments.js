// Experiments: each config's variants and prompt A/B tests, with their calls' statistics.
import { api } from "./api.js";
import { el, show } from "./dom.js";
import { count, ms, percent } from "./format.js";

const STAT_HEADERS = ["Sessions", "LLM calls", "p50", "p95", "Mean TTFT", "Tokens/call", "Error rate"];
const statCells = (s) => [count(s.sessions), count(s.llm_calls), ms(s.p50_ms), ms(s.p95_ms),
  ms(s.mean_ttft_ms), s.tokens_per_call === null ? "–" : s.tokens_per_call.toFixed(1),
  percent(s.error_rate)].map((v) => el("td", { class: "num" }, v));

export async function experimentsView() {
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
