// Formatting and small pure helpers: no DOM, so Node imports them as shipped (tests).
export const FOLD_CHARS = 4000;

export const ms = (v) => v === null || v === undefined ? "–" :
  v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Number(v).toFixed(1)} ms`;
export const count = (v) => v === null || v === undefined ? "–" : Number(v).toLocaleString("en");
export const percent = (v) => v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`;

const pad = (n, width = 2) => String(n).padStart(width, "0");

export function startMicros(iso) {  // ISO 8601 with microseconds, kept to the microsecond
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z?$/.exec(iso || "");
  if (!match) return 0;
  const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
  return Date.parse(`${match[1]}Z`) * 1000 + Number(fraction);
}

function dateOf(iso) {  // a Date, or null for what is not a time
  if (!iso) return null;
  const micros = startMicros(iso);
  const date = new Date(micros ? micros / 1000 : Date.parse(iso));
  return Number.isNaN(date.getTime()) ? null : date;
}

// The browser's local time, as people read a clock: "2026-12-03 14:03:07" (zone: zoneName()).
export function time(iso) {
  const d = dateOf(iso);
  if (!d) return iso || "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The same instant in UTC, for a title= (hover): "2026-12-03 13:03:07.123456 UTC".
export function utcTitle(iso) {
  const d = dateOf(iso);
  if (!d) return "";
  const fraction = /\.(\d+)/.exec(iso);
  return `${d.toISOString().slice(0, 19).replace("T", " ")}` +
    `${fraction ? `.${fraction[1]}` : ""} UTC`;
}

// The local zone's label for a column header: "UTC", "GMT+1", "GMT-5:30".
export function zoneName(at = new Date()) {
  const offset = -at.getTimezoneOffset();
  if (!offset) return "UTC";
  const hours = Math.floor(Math.abs(offset) / 60);
  const minutes = Math.abs(offset) % 60;
  return `GMT${offset > 0 ? "+" : "-"}${hours}${minutes ? `:${pad(minutes)}` : ""}`;
}

// "3 min ago", "2 h ago", "5 d ago"; "just now" under a minute (and for a clock ahead).
export function relative(iso, now = Date.now()) {
  const d = dateOf(iso);
  if (!d) return "";
  const seconds = Math.round((now - d.getTime()) / 1000);
  if (seconds < 60) return "just now";
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return "just now";
}

// A value for <input type="datetime-local"> (local time) from ISO, and back to ISO (UTC).
export function localInput(iso) {
  const d = dateOf(iso);
  return d ? `${time(iso).replace(" ", "T")}` : "";
}
export function fromLocalInput(value) {
  const d = value ? new Date(value) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : "";
}

export const shortId = (id) => id === null || id === undefined ? "" : String(id).slice(0, 8);

// US dollars: "$12.30", "$0.0123", "$0.000045"; "–" where no price is known (null).
export function money(usd) {
  if (usd === null || usd === undefined) return "–";
  const v = Number(usd);
  if (v === 0) return "$0.00";
  if (Math.abs(v) >= 1) return `$${v.toFixed(2)}`;
  if (Math.abs(v) >= 0.01) return `$${v.toFixed(4)}`;
  return `$${v.toPrecision(2)}`;
}

export function jsonText(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value !== undefined && value !== null) search.set(name, value);
  return search.toString();
}
