// Prompts: every version of each managed prompt, and two versions side by side.
import { api } from "./api.js";
import { el, emptyState, show, tableBox } from "./dom.js";

const picked = {};  // prompt key -> [older, newer] version numbers chosen on the page

// Line diff by longest common subsequence: [{op: "same"|"del"|"add", a, b}] in order,
// a and b being the line in the old and the new text (null on the side that has none).
export function lineDiff(oldText, newText) {
  const a = (oldText ?? "").split("\n");
  const b = (newText ?? "").split("\n");
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) out.push({ op: "same", a: a[i++], b: b[j++] });
    else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) out.push({ op: "add", a: null, b: b[j++] });
    else out.push({ op: "del", a: a[i++], b: null });
  }
  return pair(out);
}

function pair(steps) {  // a run of removed lines beside the run of added lines that replaced it
  const rows = [];
  for (let k = 0; k < steps.length;) {
    if (steps[k].op === "same") { rows.push(steps[k++]); continue; }
    const dels = [];
    const adds = [];
    while (k < steps.length && steps[k].op !== "same") (steps[k].op === "del" ? dels : adds).push(steps[k++]);
    for (let n = 0; n < Math.max(dels.length, adds.length); n++) {
      rows.push({ op: "change", a: dels[n] ? dels[n].a : null, b: adds[n] ? adds[n].b : null });
    }
  }
  return rows;
}

export async function promptsView() {
  const { prompts } = await api("/api/prompts");
  if (!prompts.length) {
    show(el("h2", {}, "Prompts"), el("p", { class: "muted" }, "No prompts: start fallom serve with --config."),
      emptyState("prompts"));
    return;
  }
  show(...prompts.flatMap(promptView));
}

function promptView(p) {
  const heading = el("h2", {}, p.key, el("span", { class: "muted" }, `  serving version ${p.current_version ?? "–"}`));
  const versions = p.versions.slice().reverse().map((v) => el("details", { open: v.version === p.current_version },
    el("summary", {}, `version ${v.version}`), el("div", { class: "muted" }, "system"), el("pre", {}, v.system_prompt ?? ""),
    el("div", { class: "muted" }, "user"), el("pre", {}, v.user_template ?? "")));
  return [heading, p.versions.length > 1 ? comparer(p) : null, ...versions];
}

function comparer(p) {  // pick two versions; their system prompt and user template, diffed
  const numbers = p.versions.map((v) => v.version);
  const [older, newer] = picked[p.key] || [numbers[numbers.length - 2], numbers[numbers.length - 1]];
  const box = el("div", { class: "prompt-diff", "data-prompt": p.key });
  const choose = (side, value) => el("select", { "data-side": side, "aria-label": `${side} version`, onchange: (event) => {
    const chosen = picked[p.key] || [older, newer];
    chosen[side === "old" ? 0 : 1] = Number(event.target.value);
    picked[p.key] = chosen;
    box.replaceWith(comparer(p));
  } }, ...numbers.map((n) => el("option", { value: n, selected: n === value }, `version ${n}`)));
  const byNumber = new Map(p.versions.map((v) => [v.version, v]));
  const a = byNumber.get(older) || {};
  const b = byNumber.get(newer) || {};
  box.append(el("div", { class: "diff-pick" }, "Compare ", choose("old", older), " with ", choose("new", newer)),
    diffTable("system", [older, newer], a.system_prompt, b.system_prompt),
    diffTable("user", [older, newer], a.user_template, b.user_template));
  return box;
}

function diffTable(part, [older, newer], oldText, newText) {
  const rows = lineDiff(oldText, newText);
  const side = (text, mark) => el("td", { class: text === null ? "diff-line diff-none" : `diff-line ${mark}` },
    text === null ? "" : text);
  return tableBox(el("table", { class: "diff", "data-part": part },
    el("thead", {}, el("tr", {}, el("th", {}, `${part} · version ${older}`), el("th", {}, `${part} · version ${newer}`))),
    el("tbody", {}, ...rows.map((r) => el("tr", { "data-op": r.op },
      side(r.a, r.op === "same" ? "" : "diff-del"), side(r.b, r.op === "same" ? "" : "diff-add"))))));
}
