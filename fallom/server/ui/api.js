// The API, with the key from this tab's session storage.
import { el, rerender, show } from "./dom.js";

const KEY = "fallom.apiKey";

export class Unauthorized extends Error {}

export async function api(path) {
  const key = sessionStorage.getItem(KEY) || "local";  // no --api-key: any key is taken
  const response = await fetch(path, { headers: { Authorization: `Bearer ${key}` } });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

export function login() {
  const input = el("input", { type: "password", placeholder: "API key", autocomplete: "off",
                              id: "api-key" });
  const form = el("form", { class: "login", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    rerender();
  } }, el("strong", {}, "This server asks for an API key"),
  el("span", { class: "muted" }, "One of the keys fallom serve was started with (--api-key). " +
     "It is kept only in this tab."), input, el("button", { type: "submit" }, "Open"));
  show(form);
  input.focus();
}
