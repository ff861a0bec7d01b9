// The page: every value from a trace reaches it through text nodes (el), never as HTML.
import { FOLD_CHARS, count, jsonText } from "./format.js";

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
