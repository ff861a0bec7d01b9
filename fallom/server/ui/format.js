// Formatting and small pure helpers: no DOM, so Node imports them as shipped (tests).
export const FOLD_CHARS = 4000;

export const ms = (v) => v === null || v === undefined ? "–" :
  v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Number(v).toFixed(1)} ms`;
export const count = (v) => v === null || v === undefined ? "–" : Number(v).toLocaleString("en");
export const percent = (v) => v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`;
export const time = (iso) => iso ? iso.replace("T", " ").replace("Z", "").slice(0, 23) : "";

export function startMicros(iso) {  // ISO 8601 with microseconds, kept to the microsecond
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z?$/.exec(iso || "");
  if (!match) return 0;
  const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
  return Date.parse(`${match[1]}Z`) * 1000 + Number(fraction);
}

export function jsonText(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value !== undefined) search.set(name, value);
  return search.toString();
}
