// The page: every value from a trace reaches it through text nodes (el), never as HTML.
import { FOLD_CHARS, count, jsonText, shortId } from "./format.js";

const main = document.getElementById("main");
const cleanups = [];

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(...nodes) { main.replaceChildren(...nodes); }

// What a page leaves running (a poller, a key handler) is stopped when the next one opens.
export function onLeave(stop) { cleanups.push(stop); }
export function leave() { while (cleanups.length) cleanups.pop()(); }
// Draw the current page again (after paging, or after the key was given).
export function rerender() { window.dispatchEvent(new HashChangeEvent("hashchange")); }

export function folded(value) {  // long values folded: the first part, then the rest on demand
  const text = jsonText(value);
  if (text.length <= FOLD_CHARS) return el("pre", {}, text);
  const rest = el("pre", {}, text);
  return el("details", {}, el("summary", {}, `${text.slice(0, 200)}… (${count(text.length)} characters)`), rest);
}

// A wide table scrolls inside its own box, never the page sideways.
export function tableBox(table) { return el("div", { class: "table-box" }, table); }

async function copyText(text) {  // the clipboard API, else the old way (a selected textarea)
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea", { class: "copy-buffer", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

// An id as its first 8 characters: the whole id on hover, a click copies it (and opens nothing).
export function idChip(id) {
  if (id === null || id === undefined || id === "") return el("span", { class: "muted" }, "–");
  const text = String(id);
  const chip = el("button", { type: "button", class: "id-chip", title: `${text} (click to copy)`,
                              "data-id": text }, shortId(text));
  chip.addEventListener("click", async (event) => {
    event.stopPropagation();
    event.preventDefault();
    const copied = await copyText(text);
    chip.textContent = copied ? "copied" : shortId(text);
    chip.classList.toggle("copied", copied);
    setTimeout(() => { chip.textContent = shortId(text); chip.classList.remove("copied"); }, 1200);
  });
  chip.addEventListener("keydown", (event) => event.stopPropagation());  // Enter copies here
  return chip;
}

// What an empty list shows: the two lines that send this server a first trace.
export function emptyState(kind = "traces") {
  const url = location.origin;
  return el("div", { class: "empty-state", id: "empty-state" },
    el("h2", {}, `No ${kind} yet`),
    el("p", { class: "muted" }, "Point an app at this server, then run it:"),
    el("pre", { class: "snippet" }, `export FALLOM_TRACES_URL=${url}\n` +
      "export FALLOM_API_KEY=<a key this server was started with>"),
    el("pre", { class: "snippet" }, "import fallom\nfallom.init()\n" +
      "with fallom.span(\"my-first-trace\"): pass"),
    el("p", { class: "muted" }, "It appears here within seconds, without a reload."));
}

const INTERACTIVE = "a, button, input, select, textarea, summary, label";

function open(href, event) {
  if (event && (event.ctrlKey || event.metaKey || event.button === 1)) window.open(href, "_blank");
  else location.hash = href;
}

// A table row that is a link: focusable, a click or Enter opens href (ctrl/cmd: a new tab).
// cells: <td> nodes, or values put in a <td> as text.
export function rowLink(href, ...cells) {
  const row = el("tr", { class: "clickable", role: "link", tabindex: 0, "data-href": href },
    ...cells.flat().map((c) => c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)));
  row.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest(INTERACTIVE)) return;
    open(href, event);
  });
  row.addEventListener("auxclick", (event) => { if (event.button === 1) open(href, event); });
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === row) { event.preventDefault(); open(href, event); }
  });
  return row;
}

function typing(target) {
  return target instanceof Element &&
    (target.closest("input, select, textarea, [contenteditable]") !== null);
}

// j/k move the selection over container's row links (Enter opens the selected one); the
// listener is dropped when the page is left. The rows may be redrawn: they are looked up
// on each key.
export function keyNav(container) {
  const keys = (event) => {
    if (!container.isConnected || typing(event.target) || event.ctrlKey || event.metaKey ||
        event.altKey || !["j", "k", "Enter"].includes(event.key)) return;
    const rows = [...container.querySelectorAll("[data-href]")];
    if (!rows.length) return;
    const at = rows.findIndex((r) => r.classList.contains("selected"));
    if (event.key === "Enter") {
      const idle = !document.activeElement || document.activeElement === document.body;
      if (at >= 0 && idle) open(rows[at].dataset.href, event);  // a focused row opens itself
      return;
    }
    const next = at < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, at + (event.key === "j" ? 1 : -1)));
    if (at >= 0) rows[at].classList.remove("selected");
    rows[next].classList.add("selected");
    rows[next].focus({ preventScroll: true });
    rows[next].scrollIntoView({ block: "nearest" });
    event.preventDefault();
  };
  document.addEventListener("keydown", keys);
  onLeave(() => document.removeEventListener("keydown", keys));
}

// A page for an address that names nothing: says so, with the way back to the traces.
export function notFound(what = "page") {
  const node = el("div", { class: "not-found", id: "not-found" },
    el("h2", {}, `No such ${what}`),
    el("p", { class: "muted" }, `Nothing at ${location.hash || "/"}: it may have been deleted, ` +
      "or the address is mistyped."),
    el("p", {}, el("a", { href: "#/traces", id: "back-to-traces" }, "← Back to Traces")));
  show(node);
  return node;
}
