// fallom serve's web UI: no build step, no dependency, nothing loaded from elsewhere.
// ES modules, one a page; this one routes the address (#/view/id?filters) to its page.
import { login, NotFound, Unauthorized } from "./api.js";
import { el, leave, notFound, show } from "./dom.js";
import { compareView, evalView, evalsView } from "./evals.js";
import { experimentsView } from "./experiments.js";
import { promptsView } from "./prompts.js";
import { sessionView, sessionsView } from "./sessions.js";
import { traceView } from "./trace.js";
import { tracesView } from "./traces.js";

// Each page: [how many ids it takes, its nav section, what a 404 of it names, the view].
// overview.js is imported when opened: the other pages never wait for it.
const PAGES = {
  "": [0, "traces", "page", tracesView],
  traces: [0, "traces", "page", tracesView],
  overview: [0, "overview", "page", async (params) => (await import("./overview.js")).overviewView(params)],
  trace: [1, "traces", "trace", traceView],
  sessions: [0, "sessions", "page", sessionsView],
  session: [1, "sessions", "session", sessionView],
  experiments: [0, "experiments", "page", experimentsView],
  prompts: [0, "prompts", "page", promptsView],
  evals: [0, "evals", "page", evalsView],
  eval: [1, "evals", "evaluation run", evalView],
  compare: [2, "evals", "evaluation run", compareView],
};

// "#/traces?q=refund&since=1h" → ["traces", [], {q: "refund", since: "1h"}]
export function parseHash(hash) {
  const [path, search] = hash.replace(/^#\/?/, "").split("?", 2);
  const [view, ...ids] = path.split("/").filter((part, i) => i === 0 || part !== "").map(decodeURIComponent);
  return [view, ids, Object.fromEntries(new URLSearchParams(search || ""))];
}

async function route() {
  leave();
  const [view, ids, params] = parseHash(location.hash);
  const page = Object.hasOwn(PAGES, view) && PAGES[view][0] === ids.length ? PAGES[view] : null;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === (page ? page[1] : null));
  }
  try {
    if (page) await page[3](...ids, params);
    else notFound("page");
  } catch (error) {
    if (error instanceof Unauthorized) return login(error.refused);  // not ready: the form is up
    if (error instanceof NotFound) notFound(page[2]);
    else show(el("p", { class: "error" }, `Could not load: ${error.message}`));
  }
  document.body.dataset.readyMs = performance.now().toFixed(0);  // for benchmarks/bench_ui.py
  document.body.dataset.ready = location.hash || "#/traces";
}

// /evals/{run_id}, the address the SDKs print after an upload: that run, in this page.
const evalPath = /^\/evals(?:\/([^/]+))?\/?$/.exec(location.pathname);
if (evalPath) history.replaceState(null, "", evalPath[1] ? `/#/eval/${evalPath[1]}` : "/#/evals");
window.addEventListener("hashchange", route);
route();
