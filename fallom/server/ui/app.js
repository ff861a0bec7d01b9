// fallom serve's web UI: no build step, no dependency, nothing loaded from elsewhere.
// ES modules, one a page; this one routes the address (#/view/id) to its page.
import { login, Unauthorized } from "./api.js";
import { el, leave, show } from "./dom.js";
import { compareView, evalView, evalsView } from "./evals.js";
import { experimentsView } from "./experiments.js";
import { promptsView } from "./prompts.js";
import { sessionView, sessionsView } from "./sessions.js";
import { traceView } from "./trace.js";
import { tracesView } from "./traces.js";

async function route() {
  leave();
  const [view, id, other] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const section = { trace: "traces", session: "sessions", eval: "evals", compare: "evals" }[view] || view || "traces";
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === section);
  }
  try {
    if (view === "trace" && id) await traceView(id);
    else if (view === "sessions") await sessionsView();
    else if (view === "session" && id) await sessionView(id);
    else if (view === "experiments") await experimentsView();
    else if (view === "prompts") await promptsView();
    else if (view === "evals") await evalsView();
    else if (view === "eval" && id) await evalView(id);
    else if (view === "compare" && id && other) await compareView(id, other);
    else await tracesView();
    document.body.dataset.readyMs = performance.now().toFixed(0);  // for benchmarks/bench_ui.py
    document.body.dataset.ready = location.hash || "#/traces";
  } catch (error) {
    if (error instanceof Unauthorized) login();
    else show(el("p", { class: "error" }, `Could not load: ${error.message}`));
  }
}

// /evals/{run_id}, the address the SDKs print after an upload: that run, in this page.
const evalPath = /^\/evals(?:\/([^/]+))?\/?$/.exec(location.pathname);
if (evalPath) history.replaceState(null, "", evalPath[1] ? `/#/eval/${evalPath[1]}` : "/#/evals");
window.addEventListener("hashchange", route);
route();
