// The waterfall's rows, pure (no DOM): Node runs it as shipped in the tests.
import { startMicros } from "./format.js";

// Rows [span, depth, again] in tree order, built without recursion whatever the depth.
// Spans whose parent links form a cycle are shown from one span of the cycle, and the
// cycle is cut where a span would repeat: that row has again = true.
export function spanTree(spans) {
  const ordered = [...spans].sort((a, b) => startMicros(a.start_time) - startMicros(b.start_time));
  const byId = new Map(ordered.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const span of ordered) {
    if (span.parent_span_id && byId.has(span.parent_span_id)) {
      if (!children.has(span.parent_span_id)) children.set(span.parent_span_id, []);
      children.get(span.parent_span_id).push(span);
    } else roots.push(span);
  }
  const rows = [];
  const shown = new Set();
  const grow = (start) => {
    const stack = [[start, 0]];
    while (stack.length) {
      const [span, depth] = stack.pop();
      if (shown.has(span)) {
        rows.push([span, depth, true]);
        continue;
      }
      shown.add(span);
      rows.push([span, depth, false]);
      const kids = children.get(span.span_id) || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
  };
  roots.forEach(grow);
  for (const span of ordered) {  // what is left hangs from a cycle of parent links
    if (shown.has(span)) continue;
    const seen = new Set();
    let at = span;
    while (!seen.has(at) && !shown.has(byId.get(at.parent_span_id))) {
      seen.add(at);
      at = byId.get(at.parent_span_id);
    }
    grow(seen.has(at) ? at : span);
  }
  return rows;
}
