// Prompts: every version of each managed prompt.
import { api } from "./api.js";
import { el, show } from "./dom.js";

export async function promptsView() {
  const { prompts } = await api("/api/prompts");
  const parts = prompts.flatMap((p) => [el("h2", {}, p.key, el("span", { class: "muted" }, `  serving version ${p.current_version ?? "–"}`)),
    ...p.versions.slice().reverse().map((v) => el("details", { open: v.version === p.current_version },
      el("summary", {}, `version ${v.version}`), el("div", { class: "muted" }, "system"), el("pre", {}, v.system_prompt ?? ""),
      el("div", { class: "muted" }, "user"), el("pre", {}, v.user_template ?? "")))]);
  show(...(parts.length ? parts : [el("p", { class: "muted" }, "No prompts: start fallom serve with --config.")]));
}
