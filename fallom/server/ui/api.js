// The API, with the key from this tab's session storage.
import { el, rerender, show } from "./dom.js";

const KEY = "fallom.apiKey";

// 401: refused = a key was given in this tab (and is now forgotten), not just never asked.
export class Unauthorized extends Error {
  constructor(refused) {
    super(refused ? "that key was refused" : "this server asks for an API key");
    this.refused = refused;
  }
}
// 404: the address names a trace, session or run the server does not have.
export class NotFound extends Error {}

export async function api(path) {
  const given = sessionStorage.getItem(KEY);
  const key = given || "local";  // no --api-key: any key is taken
  const response = await fetch(path, { headers: { Authorization: `Bearer ${key}` } });
  if (response.status === 401) {
    if (given !== null) sessionStorage.removeItem(KEY);
    throw new Unauthorized(given !== null);
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 404) throw new NotFound(body.error || "not found");
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

export function login(refused = false) {
  const input = el("input", { type: "password", placeholder: "API key", autocomplete: "off",
                              id: "api-key", "aria-invalid": refused ? "true" : null });
  const form = el("form", { class: "login", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    rerender();
  } }, el("strong", {}, "This server asks for an API key"),
  el("span", { class: "muted" }, "One of the keys fallom serve was started with (--api-key). " +
     "It is kept only in this tab."),
  refused ? el("p", { class: "error", id: "key-refused", role: "alert" },
    "That key was refused: check it against the keys fallom serve was started with.") : null,
  input, el("button", { type: "submit" }, "Open"));
  show(form);
  input.focus();
}
