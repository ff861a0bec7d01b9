// An LLM span's input and output as a conversation, whichever SDK recorded it.
// messagesOf is pure (Node runs it in the tests); chatView draws what it returns.
import { el, folded } from "./dom.js";
import { FOLD_CHARS, jsonText } from "./format.js";

// msg = {role, content: [part], tool_calls: [{id, name, arguments}], tool_call_id, name}
// part = {type: "text", text} | {type: "image", url} | {type: "data", value}
const ROLES = { human: "user", ai: "assistant", model: "assistant", function: "tool",
                developer: "system", bot: "assistant" };
const KNOWN_ROLES = new Set(["system", "user", "assistant", "tool"]);

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const first = (obj, ...names) => {
  for (const name of names) if (obj[name] !== undefined && obj[name] !== null) return obj[name];
  return undefined;
};

function parsedJson(value) {  // arguments sent as JSON text are shown as what they hold
  if (typeof value !== "string" || !/^\s*[[{]/.test(value)) return value;
  try { return JSON.parse(value); } catch { return value; }
}

const message = (role, content = [], extra = {}) =>
  ({ role, content, tool_calls: [], tool_call_id: null, ...extra });
const text = (value) => ({ type: "text", text: String(value) });

function imagePart(url, what = "image") {
  return { type: "image", url: typeof url === "string" ? url : jsonText(url ?? what) };
}

function toolCall(call) {  // OpenAI {function: {name, arguments}}, the rest {name, arguments|args|input}
  const fn = isObject(call.function) ? call.function : call;
  return { id: first(call, "id", "call_id", "tool_call_id") ?? null,
           name: String(first(fn, "name") ?? "?"),
           arguments: parsedJson(first(fn, "arguments", "args", "input") ?? null) };
}

// A content part of any provider: what it says, or a tool call / result lifted out of it.
function readPart(part, into) {
  if (typeof part === "string") return into.content.push(text(part));
  if (!isObject(part)) return into.content.push({ type: "data", value: part });
  const type = part.type;
  if (type === "tool_use" || type === "tool_call" || type === "function_call") {
    return into.tool_calls.push(toolCall(part));
  }
  const call = first(part, "function_call", "functionCall");
  if (isObject(call)) return into.tool_calls.push(toolCall(call));
  const response = first(part, "function_response", "functionResponse");
  if (type === "tool_result" || type === "tool_call_response" || isObject(response)) {
    return into.results.push(toolResult(part, response));
  }
  if (type === "image_url" || type === "input_image" || type === "image" || type === "uri" ||
      part.modality === "image") {
    const url = first(part, "image_url", "url", "uri", "file_id");
    const source = isObject(part.source) ? part.source : {};
    return into.content.push(imagePart(isObject(url) ? url.url : url ??
      source.url ?? `${source.media_type ?? part.mime_type ?? "image"} (${source.type ?? "inline"})`));
  }
  const file = first(part, "file_data", "fileData", "inline_data", "inlineData");
  if (isObject(file)) {
    const uri = first(file, "file_uri", "fileUri");
    const mime = first(file, "mime_type", "mimeType") ?? "file";
    return into.content.push(imagePart(uri ?? `${mime} (inline)`));
  }
  const words = first(part, "text", "content", "refusal", "thinking");
  if (typeof words === "string") return into.content.push(text(words));
  return into.content.push({ type: "data", value: part });
}

function toolResult(part, response) {
  const body = isObject(response) ? first(response, "response", "content") ?? response
    : first(part, "content", "response", "result", "output");
  const result = message("tool", [], { tool_call_id: first(part, "tool_use_id", "id", "call_id") ?? null,
                                       name: isObject(response) ? response.name ?? null : null });
  contentInto(body, result);
  return result;
}

function contentInto(content, into) {
  if (content === null || content === undefined) return;
  const bucket = { content: into.content, tool_calls: into.tool_calls, results: [] };
  if (Array.isArray(content)) content.forEach((part) => readPart(part, bucket));
  else if (typeof content === "string") {
    if (content !== "") into.content.push(text(content));  // a reply that only calls tools
  }
  else readPart(content, bucket);
  return bucket.results;
}

// OpenLLMetry's indexed attributes come as {role, content, "tool_calls.0.name": ...}.
function indexedCalls(m) {
  const calls = new Map();
  for (const [key, value] of Object.entries(m)) {
    const found = /^tool_calls\.(\d+)\.(\w+)$/.exec(key);
    if (!found) continue;
    if (!calls.has(found[1])) calls.set(found[1], {});
    calls.get(found[1])[found[2]] = value;
  }
  return [...calls.keys()].sort((a, b) => a - b).map((k) => toolCall(calls.get(k)));
}

// One message of any shape, as one or more messages (tool results become their own).
function readMessage(m, defaultRole) {
  if (typeof m === "string") return [message(defaultRole, [text(m)])];
  if (!isObject(m)) return null;
  if (m.type === "function_call") return [message("assistant", [], { tool_calls: [toolCall(m)] })];
  if (m.type === "function_call_output") {
    const out = message("tool", [], { tool_call_id: m.call_id ?? null });
    contentInto(m.output, out);
    return [out];
  }
  const rawRole = first(m, "role", "type");
  const hasBody = "content" in m || "parts" in m || "tool_calls" in m || "function_call" in m;
  if (typeof rawRole !== "string" || !hasBody) return null;
  const role = ROLES[rawRole] ?? rawRole;
  const out = message(role, [], { tool_call_id: m.tool_call_id ?? null, name: m.name ?? null });
  const results = contentInto(first(m, "content", "parts"), out) || [];
  for (const call of m.tool_calls ?? []) out.tool_calls.push(toolCall(call));
  if (isObject(m.function_call)) out.tool_calls.push(toolCall(m.function_call));
  out.tool_calls.push(...indexedCalls(m));
  const shown = out.content.length || out.tool_calls.length || !results.length;
  return [...(shown ? [out] : []), ...results];
}

function readList(list, defaultRole) {
  if (!Array.isArray(list) || !list.length) return null;
  const out = [];
  for (const item of list) {
    const read = readMessage(item, defaultRole);
    if (!read) return null;  // one unknown item: the list is not a conversation
    out.push(...read);
  }
  return out;
}

function systemOf(value) {  // Anthropic's system, Google's system_instruction, OTLP's instructions
  if (value === null || value === undefined) return [];
  const out = message("system");
  contentInto(isObject(value) && !value.type ? first(value, "parts", "content", "text") : value, out);
  return out.content.length ? [out] : [];
}

function readRequest(input, isLlm) {
  if (typeof input === "string") return isLlm ? [message("user", [text(input)])] : null;
  if (Array.isArray(input)) return readList(input, "user");
  if (!isObject(input)) return null;
  const config = isObject(input.config) ? input.config : {};
  const body = first(input, "messages", "contents", "input", "prompt");
  if (body === undefined) return readMessage(input, "user");
  const messages = readRequest(body, true);
  if (!messages) return null;
  const system = first(input, "system", "instructions", "system_instruction", "systemInstruction") ??
    first(config, "system_instruction", "systemInstruction");
  return [...systemOf(system), ...messages];
}

function readResponse(output) {
  if (typeof output === "string") return [message("assistant", [text(output)])];
  if (Array.isArray(output)) return readList(output, "assistant");
  if (!isObject(output)) return null;
  const calls = first(output, "toolCalls", "tool_calls");
  if (Array.isArray(calls) && ("text" in output || "content" in output)) {  // RecordView / this SDK
    const out = message("assistant");
    contentInto(first(output, "text", "content"), out);
    out.tool_calls.push(...calls.map(toolCall));
    return [out];
  }
  if (Array.isArray(output.choices)) return readList(output.choices.map((c) => c.message ?? c.text), "assistant");
  if (Array.isArray(output.candidates)) {
    return readList(output.candidates.map((c) => ({ role: "model", ...c.content })), "assistant");
  }
  if ("role" in output) return readMessage(output, "assistant");
  return null;
}

function indexed(attributes, prefix, role) {  // gen_ai.prompt.0.role / .content as attributes
  const found = new Map();
  for (const [key, value] of Object.entries(attributes)) {
    if (!key.startsWith(prefix)) continue;
    const [index, ...field] = key.slice(prefix.length).split(".");
    if (!/^\d+$/.test(index) || !field.length) continue;
    if (!found.has(index)) found.set(index, { role });
    found.get(index)[field.join(".")] = value;
  }
  const list = [...found.keys()].sort((a, b) => a - b).map((k) => found.get(k));
  return list.length ? list : null;
}

// {input: [msg], output: [msg]}: empty lists where the span holds no conversation. An input
// that is there but not a conversation (a function's arguments) leaves both empty.
export function messagesOf(span) {
  const attributes = isObject(span.attributes) ? span.attributes : {};
  const isLlm = span.kind === "llm" || (!span.kind && !!span.model);
  const hasInput = "input" in span;
  let input = hasInput ? readRequest(parsedJson(span.input), isLlm)
    : readList(indexed(attributes, "gen_ai.prompt.", "user"), "user");
  let output = null;
  if (input || (!hasInput && (isLlm || typeof span.output !== "string"))) {
    output = "output" in span ? readResponse(parsedJson(span.output))
      : readList(indexed(attributes, "gen_ai.completion.", "assistant"), "assistant");
  }
  const system = systemOf(parsedJson(attributes["gen_ai.system_instructions"]));
  if (input && system.length && input[0].role !== "system") input = [...system, ...input];
  return { input: input || [], output: output || [] };
}

// -- drawing -------------------------------------------------------------------------------

function partNode(part) {
  if (part.type === "text") {
    return part.text.length > FOLD_CHARS ? folded(part.text) : el("div", { class: "chat-text" }, part.text);
  }
  if (part.type === "image") {  // never loaded: a chip, its address as text
    return el("div", { class: "chat-image" }, el("span", { class: "chip" }, "[image]"),
      el("span", { class: "chat-url" }, part.url));
  }
  return folded(part.value);
}

function callNode(call) {
  return el("div", { class: "tool-call" },
    el("div", { class: "tool-call-head" }, "calls ", el("span", { class: "tool-name" }, call.name),
      call.id ? el("span", { class: "muted" }, ` · ${call.id}`) : null),
    el("pre", { class: "tool-args" }, jsonText(call.arguments ?? {})));
}

function messageNode(msg) {
  const role = KNOWN_ROLES.has(msg.role) ? msg.role : "other";
  const about = [msg.name, msg.tool_call_id].filter((v) => v !== null && v !== undefined && v !== "");
  return el("div", { class: `chat-msg role-${role}`, "data-role": msg.role },
    el("div", { class: "chat-role" }, String(msg.role),
      about.length ? el("span", { class: "muted" }, ` · ${about.join(" · ")}`) : null),
    ...msg.content.map(partNode), ...msg.tool_calls.map(callNode));
}

// The conversation of a span (its input, then its output), or null when it holds none.
export function chatView(span) {
  const { input, output } = messagesOf(span);
  if (!input.length && !output.length) return null;
  return el("div", { class: "chat" }, ...input.map(messageNode),
    output.length ? el("div", { class: "chat-divider muted" }, "response") : null,
    ...output.map((msg) => {
      const node = messageNode(msg);
      node.classList.add("chat-output");
      return node;
    }));
}
