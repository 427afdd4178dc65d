// PromptLab console: plain ES module, no build step. Talks to the API with relative URLs and keeps the
// API key in sessionStorage only.
const KEY = "promptlab.apiKey";
const THEME = "promptlab.theme";
const main = document.getElementById("main");
const notice = document.getElementById("notice");

// ---------- helpers ----------
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const $ = (sel, root = document) => root.querySelector(sel);
const html = (strings, ...values) => strings.reduce((out, s, i) => out + s + (i < values.length ? values[i] : ""), "");
const money = (v) => (v === null || v === undefined ? "—" : `$${v}`);
const delta = (v) => (v === null || v === undefined ? "—" : String(v).startsWith("-") ? `−$${String(v).slice(1)}` : `+$${v}`);
const when = (t) => (t ? new Date(t).toLocaleString() : "—");

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    const fields = (error.details && error.details.fields) || [];
    const detail = fields.map((f) => `${f.field}: ${f.message}`).join("; ");
    super(error.message ? `${error.message}${detail && !error.message.includes(detail) ? ` (${detail})` : ""}` : `The server answered ${status}.`);
    this.status = status; this.code = error.code; this.fields = fields;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { error: { message: "The API cannot be reached. Is the stack running?" } });
  }
  const text = await answer.text();
  const data = text ? JSON.parse(text) : null;
  if (answer.status === 401) { sessionStorage.removeItem(KEY); }
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

function say(message, ok = false) {
  notice.hidden = !message;
  notice.textContent = message || "";
  notice.className = ok ? "ok" : "";
}

function friendly(error) {
  if (error.status === 401) return "Your API key was refused. Sign in again with a live key.";
  if (error.status === 429) return `Too many requests: ${error.message}`;
  if (error.status === 402) return `Over budget: ${error.message}`;
  return error.message || String(error);
}

async function guard(action) {
  try { return await action(); } catch (error) {
    say(friendly(error));
    if (error.status === 401) route(true);
    return undefined;
  }
}

function highlight(text) {
  return esc(text).replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, '<span class="var">{{ $1 }}</span>');
}

function placeholders(...texts) {
  const seen = [];
  for (const t of texts) for (const m of (t || "").matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) if (!seen.includes(m[1])) seen.push(m[1]);
  return seen;
}

// Set an element's HTML if it is still on the page (an answer can arrive after the person moved on).
function put(selector, markup) {
  const el = $(selector);
  if (el) el.innerHTML = markup;
}

const badge = (status) => `<span class="badge ${esc(status)}">${esc(status)}</span>`;

// ---------- theme ----------
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme; else delete document.documentElement.dataset.theme;
  const dark = theme ? theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  $("#theme").setAttribute("aria-pressed", String(dark));
  $("#theme").title = dark ? "Switch to light mode" : "Switch to dark mode";
}
$("#theme").addEventListener("click", () => {
  const dark = $("#theme").getAttribute("aria-pressed") === "true";
  const next = dark ? "light" : "dark";
  localStorage.setItem(THEME, next); applyTheme(next);
});
applyTheme(localStorage.getItem(THEME));
$("#signout").addEventListener("click", () => { sessionStorage.removeItem(KEY); location.hash = "#/templates"; route(); });

// ---------- sign in ----------
function signIn() {
  main.innerHTML = html`
    <h1>Sign in</h1>
    <form class="panel" id="signin">
      <div class="field"><label for="key">API key</label>
        <input id="key" name="key" type="password" autocomplete="off" required placeholder="pl_…"></div>
      <p class="muted">Kept in this tab's session storage only. Locally, the runner prints a development key
        (also in <span class="mono">~/.promptlab/dev-api-key</span>).</p>
      <button type="submit">Sign in</button>
    </form>`;
  $("#signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("#key").value.trim());
    say("");
    const ok = await guard(() => api("GET", "templates?limit=1"));
    if (ok) route(); else sessionStorage.removeItem(KEY);
  });
  $("#key").focus();
}

// ---------- templates ----------
async function templatesPage() {
  main.innerHTML = html`
    <h1>Templates</h1>
    <div class="row panel">
      <div class="field"><label for="q">Search</label><input id="q" type="search" placeholder="name or description"></div>
      <button type="button" id="new">New template</button>
    </div>
    <div class="panel table-wrap" id="list"><p class="muted">Loading…</p></div>`;
  const load = async () => {
    const q = $("#q").value.trim();
    const page = await guard(() => api("GET", `templates?limit=100${q ? `&q=${encodeURIComponent(q)}` : ""}`));
    if (!page) return;
    put("#list", page.items.length ? html`<table><thead><tr><th>Name</th><th>Version</th><th class="opt">Variables</th><th class="opt">Updated</th></tr></thead><tbody>
      ${page.items.map((t) => `<tr><td><a href="#/templates/${esc(t.id)}">${esc(t.name)}</a><div class="muted mono">${esc(t.id)}</div></td>
        <td>v${t.version}</td><td class="opt">${t.variables.map((v) => `<span class="var">${esc(v.name)}</span>`).join(" ")}</td><td class="opt">${when(t.updatedAt)}</td></tr>`).join("")}
      </tbody></table>` : '<p class="muted">No templates yet. Make one with “New template”.</p>');
  };
  let timer;
  $("#q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 250); });
  $("#new").addEventListener("click", () => { location.hash = "#/templates/new"; });
  await load();
}

function editorForm(t) {
  return html`
    <form id="editor" class="panel">
      <div class="row">
        <div class="field"><label for="name">Name</label><input id="name" required value="${esc(t.name || "")}"></div>
        <div class="field"><label for="description">Description</label><input id="description" value="${esc(t.description || "")}"></div>
      </div>
      <div class="field"><label for="system">System prompt</label><textarea id="system" rows="3">${esc(t.system || "")}</textarea></div>
      <div class="field"><label for="body">Body — <span class="var">{{ variables }}</span> are filled from the input</label>
        <textarea id="body" rows="6" required>${esc(t.body || "")}</textarea></div>
      <div class="field"><label>Highlighted</label><div class="highlight" id="highlighted" aria-live="polite"></div></div>
      <p>Variables: <span id="vars"></span></p>
      <div class="field"><label for="schema">Variable schema (JSON Schema, optional)</label>
        <textarea id="schema" rows="6" placeholder='{"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}'>${t.variablesSchema ? esc(JSON.stringify(t.variablesSchema, null, 2)) : ""}</textarea></div>
      <div class="row">
        <div class="field"><label for="maxTokens">Default max tokens</label><input id="maxTokens" type="number" min="1" value="${esc((t.defaults && t.defaults.maxTokens) || "")}"></div>
        <div class="field"><label for="ttl">Cache TTL (s)</label><input id="ttl" type="number" min="0" value="${esc(t.cacheTtlSeconds ?? "")}"></div>
      </div>
      <button type="submit">${t.id ? "Save new version" : "Create template"}</button>
    </form>`;
}

function wireEditor() {
  const refresh = () => {
    put("#highlighted", highlight($("#body").value) || '<span class="muted">(empty)</span>');
    put("#vars", placeholders($("#system").value, $("#body").value).map((v) => `<span class="var">${esc(v)}</span>`).join(" ") || '<span class="muted">none</span>');
  };
  ["#body", "#system"].forEach((s) => $(s).addEventListener("input", refresh));
  refresh();
}

function editorBody() {
  const body = { name: $("#name").value.trim(), body: $("#body").value };
  if ($("#description").value.trim()) body.description = $("#description").value.trim();
  if ($("#system").value.trim()) body.system = $("#system").value;
  if ($("#maxTokens").value) body.defaults = { maxTokens: Number($("#maxTokens").value) };
  if ($("#ttl").value) body.cacheTtlSeconds = Number($("#ttl").value);
  const schema = $("#schema").value.trim();
  if (schema) {
    try { body.variablesSchema = JSON.parse(schema); } catch { throw new ApiError(422, { error: { message: "The variable schema is not valid JSON." } }); }
  }
  return body;
}

async function newTemplatePage() {
  main.innerHTML = `<h1>New template</h1>${editorForm({})}`;
  wireEditor();
  $("#editor").addEventListener("submit", async (e) => {
    e.preventDefault();
    const made = await guard(() => api("POST", "templates", editorBody()));
    if (made) { say(`Created ${made.name} (v1).`, true); location.hash = `#/templates/${made.id}`; }
  });
}

function sampleInput(t) {
  const sample = {};
  const props = (t.variablesSchema && t.variablesSchema.properties) || {};
  for (const v of t.variables) {
    const spec = props[v.name] || {};
    sample[v.name] = spec.default ?? (spec.enum ? spec.enum[0] : spec.type === "integer" || spec.type === "number" ? (spec.minimum ?? 1) : `sample ${v.name}`);
  }
  return JSON.stringify(sample, null, 2);
}

async function templatePage(id) {
  const [t, versions, labels] = await Promise.all([
    guard(() => api("GET", `templates/${id}`)), guard(() => api("GET", `templates/${id}/versions`)), guard(() => api("GET", `templates/${id}/labels`)),
  ]);
  if (!t) { main.innerHTML = '<p class="muted">This template could not be loaded.</p>'; return; }
  main.innerHTML = html`
    <h1>${esc(t.name)} <span class="muted">v${t.version}</span> ${t.archivedAt ? '<span class="badge cancelled">archived</span>' : ""}</h1>
    <p class="muted mono">${esc(t.id)}</p>
    <div class="grid">
      <section>${editorForm(t)}</section>
      <section>
        <div class="panel"><h2>Preview</h2>
          <div class="field"><label for="sample">Sample input (JSON)</label><textarea id="sample" rows="5">${esc(sampleInput(t))}</textarea></div>
          <button type="button" id="preview">Preview render</button>
          <div id="rendered"></div></div>
        <div class="panel"><h2>Labels</h2><div id="labels"></div>
          <form class="row" id="move"><div class="field"><label for="label">Label</label><input id="label" value="production" pattern="[A-Za-z][A-Za-z0-9._-]*"></div>
            <div class="field"><label for="labelVersion">Version</label><input id="labelVersion" type="number" min="1" max="${t.version}" value="${t.version}"></div>
            <button type="submit">Move label</button></form></div>
      </section>
    </div>
    <div class="panel"><h2>Version history</h2><div class="table-wrap" id="history"></div><div id="diff" class="diff"></div></div>`;
  wireEditor();
  $("#editor").addEventListener("submit", async (e) => {
    e.preventDefault();
    const saved = await guard(() => api("PUT", `templates/${id}`, editorBody()));
    if (saved) { say(`Saved version ${saved.version}.`, true); templatePage(id); }
  });
  $("#preview").addEventListener("click", async () => {
    let input;
    try { input = JSON.parse($("#sample").value || "{}"); } catch { say("The sample input is not valid JSON."); return; }
    const r = await guard(() => api("POST", `templates/${id}/render`, { input }));
    if (!r) return;
    put("#rendered", html`
      ${r.system ? `<h3>System</h3><pre class="output">${esc(r.system)}</pre>` : ""}
      ${r.messages.map((m) => `<h3>${esc(m.role)}</h3><pre class="output">${esc(m.content)}</pre>`).join("")}
      <dl class="kv"><dt>Model</dt><dd>${esc(r.provider)}/${esc(r.model)}</dd><dt>Input tokens (estimate)</dt><dd>${r.inputTokensEstimate}</dd>
      <dt>Max tokens</dt><dd>${r.maxTokens}</dd><dt>Worst-case cost</dt><dd>${money(r.worstCaseCostUSD)}</dd></dl>`);
  });
  const showLabels = (l) => {
    put("#labels", (l.labels.length ? l.labels.map((x) => `<span class="badge label">${esc(x.label)} → v${x.version}</span>`).join(" ") : '<p class="muted">No labels.</p>')
      + (l.moves.length ? `<ul class="muted">${l.moves.slice(0, 5).map((m) => `<li>${esc(m.label)}: ${m.fromVersion ? `v${m.fromVersion}` : "new"} → v${m.toVersion} by ${esc(m.movedBy || "?")}, ${when(m.movedAt)}</li>`).join("")}</ul>` : ""));
  };
  if (labels) showLabels(labels);
  $("#move").addEventListener("submit", async (e) => {
    e.preventDefault();
    const l = await guard(() => api("PUT", `templates/${id}/labels/${encodeURIComponent($("#label").value)}`, { version: Number($("#labelVersion").value) }));
    if (l) { showLabels(l); say(`Label ${$("#label").value} now points at v${$("#labelVersion").value}.`, true); }
  });
  if (versions) {
    put("#history", html`<table><thead><tr><th>Version</th><th>Created</th><th>Compare</th></tr></thead><tbody>
      ${versions.items.map((v) => `<tr><td>v${v.version}</td><td>${when(v.createdAt)}</td><td>${v.version > 1 ? `<button type="button" class="ghost" data-diff="${v.version}">diff v${v.version - 1} → v${v.version}</button>` : ""}</td></tr>`).join("")}</tbody></table>`);
    main.querySelectorAll("[data-diff]").forEach((b) => b.addEventListener("click", async () => {
      const to = Number(b.dataset.diff);
      const d = await guard(() => api("GET", `templates/${id}/versions/${to - 1}/diff/${to}`));
      if (!d) return;
      const lines = [...d.body, ...d.system].map((line) => `<div class="${line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : ""}">${esc(line)}</div>`).join("");
      const changes = Object.entries(d.changes).map(([k, c]) => `<li>${esc(k)}: ${esc(JSON.stringify(c.from))} → ${esc(JSON.stringify(c.to))}</li>`).join("");
      put("#diff", `<h3>v${to - 1} → v${to}</h3><pre class="output mono">${lines || "(no text changes)"}</pre>${changes ? `<ul>${changes}</ul>` : ""}`);
    }));
  }
}

// ---------- generate ----------
function inputFields(t) {
  const props = (t.variablesSchema && t.variablesSchema.properties) || {};
  return t.variables.map((v) => {
    const spec = props[v.name] || {};
    const label = `${esc(v.name)}${v.required ? " *" : ""}${spec.description ? ` — ${esc(spec.description)}` : ""}`;
    const id = `var-${esc(v.name)}`;
    if (spec.enum) return `<div class="field"><label for="${id}">${label}</label><select id="${id}" data-var="${esc(v.name)}">${spec.enum.map((o) => `<option ${o === spec.default ? "selected" : ""}>${esc(o)}</option>`).join("")}</select></div>`;
    const type = spec.type === "integer" || spec.type === "number" ? "number" : "text";
    return `<div class="field"><label for="${id}">${label}</label><input id="${id}" data-var="${esc(v.name)}" data-type="${esc(spec.type || "string")}" type="${type}" ${v.required ? "required" : ""} value="${esc(v.default ?? "")}"></div>`;
  }).join("");
}

let providerNames;
async function providers() {  // the API's own list (its OpenAPI document), so a new provider needs no change here
  if (!providerNames) {
    const field = (await api("GET", "openapi.json")).components.schemas.GenerateRequest.properties.provider;
    providerNames = ((field.anyOf || [field]).find((s) => s.enum) || { enum: [] }).enum;
  }
  return providerNames;
}

async function generatePage(params) {
  const page = await guard(() => api("GET", "templates?limit=100"));
  if (!page) return;
  const names = (await guard(() => providers())) || [];
  const chosen = params.get("template") || (page.items[0] && page.items[0].id) || "";
  main.innerHTML = html`
    <h1>Generate</h1>
    <form class="panel" id="gen">
      <div class="row">
        <div class="field"><label for="template">Template</label><select id="template">${page.items.map((t) => `<option value="${esc(t.id)}" ${t.id === chosen ? "selected" : ""}>${esc(t.name)}</option>`).join("")}</select></div>
        <div class="field"><label for="ref">Version or label (optional)</label><input id="ref" placeholder="production, or 3"></div>
      </div>
      <div id="inputs"></div>
      <div class="row">
        <div class="field"><label for="provider">Provider</label><select id="provider"><option value="">template default</option>${names.map((n) => `<option>${esc(n)}</option>`).join("")}</select></div>
        <div class="field"><label for="model">Model</label><input id="model" placeholder="default"></div>
        <div class="field"><label for="priority">Priority</label><select id="priority"><option>normal</option><option>high</option><option>low</option><option value="economy">economy (batch API, half price, slower)</option></select></div>
      </div>
      <button type="submit" ${page.items.length ? "" : "disabled"}>Generate</button>
    </form>
    <section id="job" aria-live="polite"></section>`;
  const loadInputs = async () => {
    const t = await guard(() => api("GET", `templates/${$("#template").value}`));
    if (t) put("#inputs", inputFields(t));
  };
  $("#template").addEventListener("change", loadInputs);
  if (page.items.length) await loadInputs();
  $("#gen").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = {};
    main.querySelectorAll("[data-var]").forEach((el) => {
      if (el.value === "") return;
      input[el.dataset.var] = el.dataset.type === "integer" ? parseInt(el.value, 10) : el.dataset.type === "number" ? Number(el.value) : el.value;
    });
    const ref = $("#ref").value.trim();
    const body = { templateId: ref ? `${$("#template").value}@${ref}` : $("#template").value, input, priority: $("#priority").value };
    if ($("#provider").value) body.provider = $("#provider").value;
    if ($("#model").value.trim()) body.model = $("#model").value.trim();
    const job = await guard(() => api("POST", "generate", body));
    if (job) watchJob(job, $("#job"));
  });
}

const SHOWN_IMAGES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

function attachmentView(a) {  // inline images are shown (CSP: data: only); URLs and PDFs are named, never fetched
  if (a.data && SHOWN_IMAGES.includes(a.mediaType)) return `<img class="attachment" alt="${esc(a.mediaType)}" src="data:${esc(a.mediaType)};base64,${esc(a.data)}">`;
  return `<span class="badge label">${esc(a.mediaType)}</span> ${a.url ? `<span class="mono">${esc(a.url)}</span>` : "(inline)"}`;
}

function toolCallsView(calls) {
  return (calls || []).map((c) => `<div class="tool-call"><span class="badge label">tool call</span> <span class="mono">${esc(c.name)}(${esc(c.arguments)})</span> <span class="mono muted">${esc(c.id)}</span></div>`).join("");
}

function conversationView(messages) {
  if (!messages || !messages.length) return "";
  return `<h3>Conversation</h3>${messages.map((m) => `<div class="turn"><strong>${esc(m.role)}</strong>${m.toolCallId ? ` <span class="mono muted">→ ${esc(m.toolCallId)}</span>` : ""}
    ${m.content ? `<pre class="output">${esc(m.content)}</pre>` : ""}${(m.attachments || []).map(attachmentView).join(" ")}${toolCallsView(m.toolCalls)}</div>`).join("")}`;
}

function jobPanel(j) {
  return html`<div class="panel"><h2>Job <span class="mono">${esc(j.id)}</span> ${badge(j.status)} ${j.cacheHit ? '<span class="badge label">cache hit</span>' : ""} ${j.lane === "economy" ? '<span class="badge label">economy</span>' : ""}</h2>
    <dl class="kv"><dt>Model</dt><dd>${esc(j.provider)}/${esc(j.model)}</dd><dt>Tokens</dt><dd>${j.inputTokens ?? "—"} in / ${j.outputTokens ?? "—"} out</dd>
    <dt>Cost</dt><dd>${money(j.estimatedCostUSD)}${j.cacheHit ? ` (saved ${money(j.savedCostUSD)})` : ""}</dd><dt>Latency</dt><dd>${j.providerLatencyMs ?? "—"} ms</dd>
    <dt>Attempts</dt><dd>${j.attempts} of ${j.maxAttempts}</dd>${j.batchId ? `<dt>Provider batch</dt><dd class="mono">${esc(j.batchId)}</dd>` : ""}${j.error ? `<dt>Error</dt><dd>${esc(j.error.code)}: ${esc(j.error.message)}</dd>` : ""}</dl>
    ${conversationView(j.messages)}
    ${j.output ? `<h3>Output</h3><pre class="output" id="output">${esc(j.output)}</pre>` : ""}
    ${j.toolCalls && j.toolCalls.length ? `<h3>Tool calls</h3><div id="tool-calls">${toolCallsView(j.toolCalls)}</div>` : ""}</div>`;
}

async function watchJob(job, where) {
  where.innerHTML = jobPanel(job);
  let current = job;
  while (["queued", "processing"].includes(current.status) && document.body.contains(where)) {
    const next = await guard(() => api("GET", `jobs/${current.id}?wait=15`));  // long poll: no busy loop
    if (!next) return;
    current = next;
    where.innerHTML = jobPanel(current);
  }
}

// ---------- jobs ----------
async function jobsPage(params) {
  const status = params.get("status") || "";
  main.innerHTML = html`
    <h1>Jobs</h1>
    <form class="row panel" id="filters">
      <div class="field"><label for="status">Status</label><select id="status"><option value="">any</option>${["queued", "processing", "completed", "failed", "cancelled"].map((s) => `<option ${s === status ? "selected" : ""}>${s}</option>`).join("")}</select></div>
      <div class="field"><label for="provider">Provider</label><input id="provider" value="${esc(params.get("provider") || "")}"></div>
      <button type="submit">Filter</button>
    </form>
    <div class="panel table-wrap" id="jobs"><p class="muted">Loading…</p></div>
    <div class="row"><button type="button" class="ghost" id="more" hidden>Next page</button></div>
    <section id="detail"></section>`;
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if ($("#status").value) q.set("status", $("#status").value);
    if ($("#provider").value.trim()) q.set("provider", $("#provider").value.trim());
    location.hash = `#/jobs?${q}`;
  });
  let cursor = null;
  const load = async (append) => {
    const q = new URLSearchParams({ limit: "25" });
    if (status) q.set("status", status);
    if (params.get("provider")) q.set("provider", params.get("provider"));
    if (append && cursor) q.set("cursor", cursor);
    const page = await guard(() => api("GET", `jobs?${q}`));
    if (!page || !$("#jobs")) return;  // no answer, or the person has moved to another page
    cursor = page.nextCursor;
    $("#more").hidden = !cursor;
    const rows = page.items.map((j) => `<tr data-id="${esc(j.id)}"><td><a href="#/jobs?job=${esc(j.id)}" data-open="${esc(j.id)}" class="mono">${esc(j.id)}</a></td><td>${badge(j.status)}</td>
      <td class="opt">${esc(j.provider)}/${esc(j.model)}</td><td class="opt">${money(j.estimatedCostUSD)}</td><td class="opt">${when(j.createdAt)}</td>
      <td>${["queued", "processing"].includes(j.status) ? `<button type="button" class="ghost" data-cancel="${esc(j.id)}">Cancel</button>` : ""}${j.status === "failed" ? `<button type="button" class="ghost" data-retry="${esc(j.id)}">Retry</button>` : ""}</td></tr>`).join("");
    const table = `<table><thead><tr><th>Job</th><th>Status</th><th class="opt">Model</th><th class="opt">Cost</th><th class="opt">Created</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
    if (append) $("#jobs tbody").insertAdjacentHTML("beforeend", rows); else put("#jobs", page.items.length ? table : '<p class="muted">No jobs match.</p>');
  };
  $("#jobs").addEventListener("click", async (e) => {
    const target = e.target.closest("[data-cancel],[data-retry],[data-open]");
    if (!target) return;
    e.preventDefault();
    if (target.dataset.open) { const j = await guard(() => api("GET", `jobs/${target.dataset.open}`)); if (j) watchJob(j, $("#detail")); return; }
    const id = target.dataset.cancel || target.dataset.retry;
    const done = await guard(() => api("POST", `jobs/${id}/${target.dataset.cancel ? "cancel" : "retry"}`));
    if (done) { say(`Job ${id} is ${done.status}.`, true); load(false); }
  });
  $("#more").addEventListener("click", () => load(true));
  await load(false);
  if (params.get("job")) { const j = await guard(() => api("GET", `jobs/${params.get("job")}`)); if (j) watchJob(j, $("#detail")); }
  const live = setInterval(() => { if (!document.body.contains($("#jobs"))) { clearInterval(live); return; } if (main.querySelector(".badge.queued, .badge.processing")) load(false); }, 3000);
}

// ---------- usage ----------
function bars(items, value, format) {
  const max = Math.max(1e-12, ...items.map((i) => Number(value(i))));
  return `<div class="bars">${items.map((i) => `<div class="bar"><span class="mono">${esc(i.key)}</span><span class="track" role="img" aria-label="${esc(i.key)}: ${esc(format(i))}"><span class="fill" style="width:${(100 * Number(value(i))) / max}%"></span></span><span>${esc(format(i))}</span></div>`).join("") || '<p class="muted">Nothing in this period.</p>'}</div>`;
}

async function usagePage() {
  main.innerHTML = '<h1>Usage</h1><div id="usage"><p class="muted">Loading…</p></div>';
  const [day, model, template] = await Promise.all(["day", "model", "template"].map((g) => guard(() => api("GET", `usage?groupBy=${g}`))));
  if (!day) return;
  const t = day.totals;
  const rate = t.requests ? Math.round((100 * t.cacheHits) / t.requests) : 0;
  put("#usage", html`
    <p class="muted">${when(day.from)} – ${when(day.to)}</p>
    <div class="stats">
      <div class="stat">Requests<b>${t.requests}</b></div><div class="stat">Cost<b>${money(t.costUSD)}</b></div>
      <div class="stat">Tokens<b>${t.totalTokens}</b></div><div class="stat">Cache hit rate<b>${rate}%</b></div>
      <div class="stat">Saved by the cache<b>${money(t.savedUSD)}</b></div><div class="stat">Failed<b>${t.failed}</b></div>
    </div>
    <div class="grid">
      <div class="panel"><h2>Cost per day</h2>${bars(day.items, (i) => i.costUSD, (i) => money(i.costUSD))}</div>
      <div class="panel"><h2>Tokens per day</h2>${bars(day.items, (i) => i.totalTokens, (i) => `${i.totalTokens}`)}</div>
      <div class="panel"><h2>Cost per provider/model</h2>${bars(model.items, (i) => i.costUSD, (i) => money(i.costUSD))}</div>
      <div class="panel"><h2>Requests per template</h2>${bars(template.items, (i) => i.requests, (i) => `${i.requests} (${i.cacheHits} cached)`)}</div>
    </div>`);
}

// ---------- datasets ----------
async function datasetsPage() {
  main.innerHTML = html`
    <h1>Datasets</h1>
    <form class="row panel" id="upload">
      <div class="field"><label for="dsname">Name</label><input id="dsname" required placeholder="support-tickets"></div>
      <div class="field"><label for="dsfile">JSONL or CSV file</label><input id="dsfile" type="file" accept=".jsonl,.ndjson,.csv" required></div>
      <button type="submit">Upload</button>
    </form>
    <div class="panel table-wrap" id="datasets"><p class="muted">Loading…</p></div>`;
  const load = async () => {
    const page = await guard(() => api("GET", "datasets?limit=100"));
    if (!page) return;
    put("#datasets", page.items.length ? html`<table><thead><tr><th>Name</th><th>Version</th><th>Rows</th><th class="opt">Fields</th></tr></thead><tbody>
      ${page.items.map((d) => `<tr><td><a href="#/datasets/${esc(d.id)}">${esc(d.name)}</a><div class="muted mono">${esc(d.id)}</div></td><td>v${d.version}</td><td>${d.rowCount}</td>
        <td class="opt">${d.fields.map((f) => `<span class="var">${esc(f)}</span>`).join(" ")}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">No datasets yet: upload a JSONL or CSV file.</p>');
  };
  $("#upload").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = $("#dsfile").files[0];
    if (!file) return;
    const format = file.name.toLowerCase().endsWith(".csv") ? "csv" : "jsonl";
    const made = await guard(async () => api("POST", "datasets", { name: $("#dsname").value.trim(), format, content: await file.text() }));
    if (made) { say(`Dataset ${made.name} has ${made.rowCount} rows.`, true); location.hash = `#/datasets/${made.id}`; }
  });
  await load();
}

async function datasetPage(id) {
  const d = await guard(() => api("GET", `datasets/${id}`));
  if (!d) return;
  const rows = await guard(() => api("GET", `datasets/${id}/rows?limit=100`));
  main.innerHTML = html`
    <h1>${esc(d.name)} <span class="muted">v${d.version} · ${d.rowCount} rows</span></h1>
    <div class="row"><a class="button" href="#/experiments/new?dataset=${esc(d.id)}">Run an experiment on it</a></div>
    <div class="panel table-wrap" id="rows"><table><thead><tr><th>#</th><th>Input</th><th>Expected</th></tr></thead><tbody>
      ${(rows ? rows.items : []).map((r) => `<tr><td>${r.n}</td><td class="mono">${esc(JSON.stringify(r.input))}</td><td class="mono">${esc(r.expected === null || r.expected === undefined ? "" : typeof r.expected === "string" ? r.expected : JSON.stringify(r.expected))}</td></tr>`).join("")}
    </tbody></table></div>`;
}

// ---------- experiments ----------
async function experimentsPage() {
  main.innerHTML = html`
    <h1>Experiments</h1>
    <div class="row"><a class="button" href="#/experiments/new">New experiment</a></div>
    <div class="panel table-wrap" id="experiments"><p class="muted">Loading…</p></div>`;
  const page = await guard(() => api("GET", "experiments?limit=100"));
  if (!page) return;
  put("#experiments", page.items.length ? html`<table><thead><tr><th>Experiment</th><th>Status</th><th>Rows</th><th>Variants</th><th class="opt">Started</th></tr></thead><tbody>
    ${page.items.map((x) => `<tr><td><a href="#/experiments/${esc(x.id)}" class="mono">${esc(x.name || x.id)}</a></td><td>${badge(x.status)}</td><td>${x.rows}</td><td>${x.variants}</td><td class="opt">${when(x.createdAt)}</td></tr>`).join("")}
  </tbody></table>` : '<p class="muted">No experiments yet.</p>');
}

function variantRow(i, templates) {
  return `<fieldset class="row variant"><legend>Variant ${i}</legend>
    <div class="field"><label for="vt${i}">Template</label><select id="vt${i}" data-template>${templates.map((t) => `<option value="${esc(t.id)}">${esc(t.name)} (v${t.version})</option>`).join("")}</select></div>
    <div class="field"><label for="vv${i}">Version or label</label><input id="vv${i}" data-version placeholder="current" size="10"></div>
    <div class="field"><label for="vm${i}">Model (optional)</label><input id="vm${i}" data-model size="16"></div></fieldset>`;
}

async function newExperimentPage(params) {
  const [datasets, templates] = await Promise.all([guard(() => api("GET", "datasets?limit=100")), guard(() => api("GET", "templates?limit=100"))]);
  if (!datasets || !templates) return;
  const t = templates.items;
  main.innerHTML = html`
    <h1>New experiment</h1>
    <form class="panel" id="exp">
      <div class="row">
        <div class="field"><label for="xds">Dataset</label><select id="xds">${datasets.items.map((d) => `<option value="${esc(d.id)}" ${d.id === params.get("dataset") ? "selected" : ""}>${esc(d.name)} (${d.rowCount} rows)</option>`).join("")}</select></div>
        <div class="field"><label for="xname">Name</label><input id="xname" placeholder="optional"></div>
        <div class="field"><label for="xprio">Priority</label><select id="xprio"><option>normal</option><option>low</option><option>economy</option></select></div>
      </div>
      <div id="variants">${variantRow(0, t)}${variantRow(1, t)}</div>
      <button type="button" class="ghost" id="addv">Add a variant</button>
      <fieldset class="row"><legend>Scorers</legend>
        <label><input type="checkbox" id="sc-contains" checked> contains expected</label>
        <label><input type="checkbox" id="sc-exact"> exact</label>
        <label><input type="checkbox" id="sc-judge"> judge with</label><select id="sc-judge-t" aria-label="Judge template">${t.map((x) => `<option value="${esc(x.id)}">${esc(x.name)}</option>`).join("")}</select>
      </fieldset>
      <button type="submit">Start</button>
    </form>`;
  let count = 2;
  $("#addv").addEventListener("click", () => { $("#variants").insertAdjacentHTML("beforeend", variantRow(count, t)); count += 1; });
  $("#exp").addEventListener("submit", async (e) => {
    e.preventDefault();
    const variants = [...main.querySelectorAll(".variant")].map((f) => {
      const version = $("[data-version]", f).value.trim();
      const v = { template: $("[data-template]", f).value + (version ? `@${version}` : "") };
      if ($("[data-model]", f).value.trim()) v.model = $("[data-model]", f).value.trim();
      return v;
    });
    const scorers = [];
    if ($("#sc-contains").checked) scorers.push({ type: "contains" });
    if ($("#sc-exact").checked) scorers.push({ type: "exact" });
    if ($("#sc-judge").checked) scorers.push({ type: "judge", template: $("#sc-judge-t").value });
    const body = { datasetId: $("#xds").value, variants, scorers, priority: $("#xprio").value };
    if ($("#xname").value.trim()) body.name = $("#xname").value.trim();
    const made = await guard(() => api("POST", "experiments", body));
    if (made) location.hash = `#/experiments/${made.id}`;
  });
}

function variantsTable(x) {
  const names = x.scorers.map((s) => s.name);
  return html`<table id="variants-table"><thead><tr><th>Variant</th><th>Done</th><th>Failed</th>${names.map((n) => `<th>${esc(n)}</th>`).join("")}<th>Cost</th><th class="opt">Judging</th><th>p50 / p95 ms</th><th></th></tr></thead><tbody>
    ${x.variants.map((v) => `<tr><td><a href="#/templates/${esc(v.templateId)}">${esc(v.template)}</a><div class="muted">v${v.templateVersion} · ${esc(v.provider)}/${esc(v.model)}</div></td>
      <td>${v.completed}/${v.rows}</td><td>${v.failed}</td>${names.map((n) => `<td data-score="${esc(n)}">${v.scores[n] === null ? "—" : v.scores[n].toFixed(3)}</td>`).join("")}
      <td>${money(v.costUSD)}</td><td class="opt">${money(v.judgeCostUSD)}</td><td>${v.latencyMs.p50 ?? "—"} / ${v.latencyMs.p95 ?? "—"}</td>
      <td>${x.status !== "running" ? `<button type="button" class="ghost" data-promote="${v.index}">Promote to production</button>` : ""}</td></tr>`).join("")}
  </tbody></table>`;
}

async function showComparison(id, a, b) {
  const c = await guard(() => api("GET", `experiments/${id}/compare?a=${a}&b=${b}&limit=50`));
  if (!c) return;
  const d = c.delta, ci = d.scoreInterval;
  put("#compare", html`
    <p id="compare-summary">Variant ${b} − variant ${a} over ${c.pairedRows} rows: score <b>${d.score === null ? "—" : d.score.toFixed(3)}</b>${ci ? ` (95% CI ${ci.low.toFixed(3)} … ${ci.high.toFixed(3)})` : ""} · ${c.wins} better, ${c.losses} worse, ${c.ties} equal · cost ${delta(d.costUSD)} · p50 ${d.latencyP50Ms ?? "—"} ms</p>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>Input</th><th>Output ${a}</th><th>Output ${b}</th><th>Δ</th></tr></thead><tbody>
      ${c.rows.map((r) => `<tr><td>${r.row}</td><td class="mono">${esc(JSON.stringify(r.input))}</td><td>${esc(r.outputA)}</td><td>${esc(r.outputB)}</td><td>${r.delta === null ? "—" : r.delta.toFixed(2)}</td></tr>`).join("")}
    </tbody></table></div>`);
}

async function download(id) {
  const answer = await fetch(`experiments/${id}/results?format=csv&limit=5000`, { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` } });
  if (!answer.ok) { say(`The download failed (${answer.status}).`); return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await answer.blob());
  link.download = `${id}.csv`;
  link.click();
}

async function experimentPage(id) {
  const x = await guard(() => api("GET", `experiments/${id}`));
  if (!x) return;
  const options = x.variants.map((v) => `<option value="${v.index}">${v.index}: ${esc(v.template)}</option>`).join("");
  main.innerHTML = html`
    <h1>${esc(x.name || x.id)} <span id="xstatus">${badge(x.status)}</span></h1>
    <p class="muted">Dataset <a href="#/datasets/${esc(x.datasetId)}">${esc(x.datasetId)}</a> v${x.datasetVersion} · ${x.rows} rows · ${esc(x.priority)}</p>
    <progress id="xprogress" max="1" value="${x.progress}" aria-label="Progress"></progress> <span id="xcost">${money(x.costUSD)}</span>
    <div class="row"><button type="button" class="ghost" id="xcancel" ${x.status === "running" ? "" : "hidden"}>Cancel</button>
      <button type="button" class="ghost" id="xcsv">Download CSV</button></div>
    <div class="panel table-wrap" id="xvariants">${variantsTable(x)}</div>
    <section class="panel"><h2>Compare</h2>
      <form class="row" id="cmp"><div class="field"><label for="ca">A</label><select id="ca">${options}</select></div>
        <div class="field"><label for="cb">B</label><select id="cb">${options}</select></div><button type="submit">Compare</button></form>
      <div id="compare"></div></section>`;
  if (x.variants.length > 1) $("#cb").value = "1";
  const refresh = (y) => {
    put("#xstatus", badge(y.status)); put("#xvariants", variantsTable(y)); put("#xcost", money(y.costUSD));
    const bar = $("#xprogress"); if (bar) bar.value = y.progress;
    if ($("#xcancel")) $("#xcancel").hidden = y.status !== "running";
  };
  $("#xcancel").addEventListener("click", async () => { const y = await guard(() => api("POST", `experiments/${id}/cancel`)); if (y) refresh(y); });
  $("#xcsv").addEventListener("click", () => download(id));
  $("#cmp").addEventListener("submit", (e) => { e.preventDefault(); showComparison(id, $("#ca").value, $("#cb").value); });
  $("#xvariants").addEventListener("click", async (e) => {
    const target = e.target.closest("[data-promote]");
    if (!target) return;
    const done = await guard(() => api("POST", `experiments/${id}/promote`, { variant: Number(target.dataset.promote), label: "production" }));
    if (done) say(`production now points at version ${done.version} of ${done.templateId}.`, true);
  });
  const live = setInterval(async () => {
    if (!document.body.contains($("#xvariants"))) { clearInterval(live); return; }
    const y = await guard(() => api("GET", `experiments/${id}`));
    if (!y) return;
    refresh(y);
    if (y.status !== "running") clearInterval(live);
  }, 1000);
  if (x.status !== "running") clearInterval(live);
}

// ---------- keys and history (admin keys) ----------
const SCOPE_NAMES = ["read", "generate", "templates:write", "labels:write", "jobs:write", "datasets:write", "experiments:run", "admin"];

async function keysPage() {
  main.innerHTML = html`
    <h1>Keys</h1>
    <form class="panel" id="newkey">
      <div class="row">
        <div class="field"><label for="keyname">Name</label><input id="keyname" required placeholder="billing-service"></div>
        <div class="field"><label for="keybudget">Monthly budget (USD, optional)</label><input id="keybudget" inputmode="decimal" placeholder="50.00"></div>
      </div>
      <fieldset class="scopes"><legend>Scopes</legend>${SCOPE_NAMES.map((n) => `<label><input type="checkbox" name="scope" value="${esc(n)}" ${["read", "generate"].includes(n) ? "checked" : ""}> ${esc(n)}</label>`).join(" ")}</fieldset>
      <button type="submit">Make key</button>
    </form>
    <section id="madekey" aria-live="polite"></section>
    <div class="panel table-wrap" id="keys"><p class="muted">Loading…</p></div>
    <h2>History</h2>
    <div class="panel table-wrap" id="history"><p class="muted">Loading…</p></div>`;
  const load = async () => {
    const [keys, log] = await Promise.all([guard(() => api("GET", "keys")), guard(() => api("GET", "audit?limit=50"))]);
    if (!keys || !log) { put("#keys", '<p class="muted">Only an admin key manages keys and reads the history.</p>'); put("#history", ""); return; }
    put("#keys", html`<table><thead><tr><th>Key</th><th>Scopes</th><th>Budget</th><th>Spent</th><th>State</th><th></th></tr></thead><tbody>
      ${keys.items.map((k) => `<tr><td>${esc(k.name)} <span class="mono muted">${esc(k.prefix)}…</span></td><td>${esc((k.scopes || ["every scope"]).join(", "))}</td>
        <td>${k.monthlyBudgetUSD ? money(k.monthlyBudgetUSD) : "—"}</td><td>${money(k.spentUSD)}</td><td>${k.revokedAt ? `revoked ${when(k.revokedAt)}` : "live"}</td>
        <td>${k.revokedAt ? "" : `<button class="ghost" data-revoke="${esc(k.id)}">Revoke</button>`}</td></tr>`).join("")}</tbody></table>`);
    put("#history", html`<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Target</th><th>Change</th></tr></thead><tbody>
      ${log.items.map((e) => `<tr><td>${when(e.at)}</td><td>${esc(e.keyName || "—")}</td><td>${esc(e.action)}</td><td class="mono">${esc(e.targetId)}</td>
        <td class="mono">${e.before ? esc(JSON.stringify(e.before)) + " → " : ""}${e.after ? esc(JSON.stringify(e.after)) : ""}</td></tr>`).join("")}</tbody></table>`);
  };
  $("#keys").addEventListener("click", async (e) => {
    const id = e.target.dataset && e.target.dataset.revoke;
    if (id && confirm("Revoke this key? It stops working at once.")) { await guard(() => api("DELETE", `keys/${id}`)); await load(); }
  });
  $("#newkey").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: $("#keyname").value.trim(), scopes: [...main.querySelectorAll("[name=scope]:checked")].map((c) => c.value) };
    if ($("#keybudget").value.trim()) body.monthlyBudgetUSD = $("#keybudget").value.trim();
    const made = await guard(() => api("POST", "keys", body));
    if (!made) return;
    put("#madekey", html`<div class="panel"><p>Key <b>${esc(made.name)}</b> — copy it now, it is not shown again:</p><pre class="output mono" id="newsecret">${esc(made.key)}</pre></div>`);
    await load();
  });
  await load();
}

// ---------- router ----------
async function route(keepNotice = false) {
  if (keepNotice !== true) say("");
  const [path, query] = (location.hash.slice(1) || "/templates").split("?");
  const params = new URLSearchParams(query || "");
  const signedIn = Boolean(sessionStorage.getItem(KEY));
  $("#signout").hidden = !signedIn;
  const section = path.split("/")[1] || "templates";
  document.querySelectorAll("[data-nav]").forEach((a) => (a.dataset.nav === section ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current")));
  if (!signedIn) { signIn(); return; }
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "templates" && parts[1] === "new") await newTemplatePage();
  else if (parts[0] === "templates" && parts[1]) await templatePage(parts[1]);
  else if (parts[0] === "generate") await generatePage(params);
  else if (parts[0] === "jobs") await jobsPage(params);
  else if (parts[0] === "usage") await usagePage();
  else if (parts[0] === "keys") await keysPage();
  else if (parts[0] === "datasets" && parts[1]) await datasetPage(parts[1]);
  else if (parts[0] === "datasets") await datasetsPage();
  else if (parts[0] === "experiments" && parts[1] === "new") await newExperimentPage(params);
  else if (parts[0] === "experiments" && parts[1]) await experimentPage(parts[1]);
  else if (parts[0] === "experiments") await experimentsPage();
  else await templatesPage();
  document.title = `${section[0].toUpperCase()}${section.slice(1)} · PromptLab`;
}
window.addEventListener("hashchange", () => route());
route();
