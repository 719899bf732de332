// The prechat web chat widget: `<script src="https://<api>/widget.js" data-survey="default" async>`.
// Optional attributes: data-lang (else the browser's language, else the survey's default),
// data-position ("right" or "left"), data-accent (a CSS colour), data-ws (the WebSocket URL,
// when the form does not name one). Served after validators.js (PrechatValidators) in one file.
//
// Everything renders inside a shadow root, so the host page's CSS cannot reach it and its CSS
// cannot reach the page. The pre-chat form is the survey's own (GET /webchat/form); the browser
// checks fields for instant feedback, the server decides (POST /webchat/conversations, per-field
// errors with the survey's retry texts). The visitor's token stays in localStorage, so a reload
// or a new tab continues the same conversation. Everything anyone typed is set as textContent.
"use strict";

(() => {
  const V = typeof PrechatValidators !== "undefined" ? PrechatValidators : null;
  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__prechatWidget) return;
  window.__prechatWidget = true;
  const base = new URL(script.src, location.href).origin;
  const ds = script.dataset;
  const survey = ds.survey || "default";
  const wantLang = (ds.lang || navigator.language || "en").slice(0, 2).toLowerCase();
  const accent = /^[#a-zA-Z0-9(),.% ]{1,40}$/.test(ds.accent || "") ? ds.accent : "#0b6e4f";
  const side = ds.position === "left" ? "left" : "right";
  const STORE = `prechat.webchat.${base}`;
  const CALLING = { en: "US", es: "ES", pt: "PT", fr: "FR", de: "DE" };
  // The widget's own words (the survey's come from the form), in the form's language.
  const WORDS = {
    en: { chatting: (a) => `You are chatting with ${a}`, waiting: "Waiting for an agent…", closed: "This conversation was closed.",
      agent: "Agent", message: "Message", send: "Send", close: "Close", busy: "Too many attempts; please wait a minute.",
      failed: "Something went wrong; please try again.", down: "The chat is not available right now." },
    es: { chatting: (a) => `Estás hablando con ${a}`, waiting: "Esperando a un agente…", closed: "Esta conversación se ha cerrado.",
      agent: "Agente", message: "Mensaje", send: "Enviar", close: "Cerrar", busy: "Demasiados intentos; espera un minuto.",
      failed: "Algo ha fallado; inténtalo de nuevo.", down: "El chat no está disponible ahora mismo." },
  };
  const t = (key, ...args) => { const w = WORDS[lang] || WORDS[wantLang] || WORDS.en; const v = w[key] ?? WORDS.en[key]; return typeof v === "function" ? v(...args) : v; };

  const host = document.createElement("div");
  host.id = "prechat-webchat";
  document.body.append(host);
  const root = host.attachShadow({ mode: "open" });
  const css = `
    :host { all: initial; }
    * { box-sizing: border-box; font-family: system-ui, sans-serif; }
    .launcher { position: fixed; bottom: 20px; ${side}: 20px; z-index: 2147483000; border: 0; border-radius: 28px;
      background: ${accent}; color: #fff; padding: 14px 20px; font-size: 15px; cursor: pointer; box-shadow: 0 4px 14px #0004; }
    .panel { position: fixed; bottom: 84px; ${side}: 20px; z-index: 2147483000; width: min(380px, calc(100vw - 24px));
      max-height: min(640px, calc(100vh - 110px)); display: flex; flex-direction: column; background: #fff; color: #1b1b1b;
      border-radius: 12px; box-shadow: 0 8px 30px #0005; overflow: hidden; font-size: 14px; }
    .panel[hidden] { display: none; }
    header { background: ${accent}; color: #fff; padding: 12px 14px; display: flex; justify-content: space-between; align-items: center; }
    header h2 { margin: 0; font-size: 16px; }
    header button { background: none; border: 0; color: #fff; font-size: 20px; cursor: pointer; }
    .body { padding: 12px 14px; overflow: auto; flex: 1; }
    .desc { margin: 0 0 10px; color: #444; }
    .field { margin-bottom: 12px; }
    .field[hidden] { display: none; }
    label, legend { display: block; font-weight: 600; margin-bottom: 4px; }
    .req { color: #b00020; margin-left: 2px; }
    .prompt { color: #555; font-size: 12px; margin: 0 0 4px; }
    input[type=text], input[type=email], input[type=tel], input[type=date], textarea, select {
      width: 100%; padding: 8px; border: 1px solid #bbb; border-radius: 6px; font-size: 14px; }
    .phone { display: flex; gap: 6px; } .phone select { width: 40%; }
    fieldset { border: 0; padding: 0; margin: 0; }
    .opt { display: flex; gap: 6px; align-items: center; font-weight: 400; margin: 2px 0; }
    .error { color: #b00020; font-size: 12px; margin: 4px 0 0; min-height: 0; }
    .invalid input, .invalid textarea, .invalid select { border-color: #b00020; }
    .hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
    .start { width: 100%; padding: 10px; background: ${accent}; color: #fff; border: 0; border-radius: 6px; font-size: 15px; cursor: pointer; }
    .start:disabled { opacity: .6; }
    .status { font-size: 12px; color: #555; margin-bottom: 8px; }
    .msgs { display: flex; flex-direction: column; gap: 6px; }
    .msg { max-width: 85%; padding: 7px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .msg.me { align-self: flex-end; background: #dcf8c6; }
    .msg.them { align-self: flex-start; background: #f0f0f0; }
    .msg .who { display: block; font-size: 11px; color: #666; margin-bottom: 2px; }
    .note { align-self: center; font-size: 12px; color: #666; }
    form.send { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #ddd; }
    form.send textarea { flex: 1; height: 38px; resize: none; }
    form.send button { background: ${accent}; color: #fff; border: 0; border-radius: 6px; padding: 0 14px; cursor: pointer; }
    :focus-visible { outline: 2px solid ${accent}; outline-offset: 2px; }
  `;
  const style = document.createElement("style");
  style.textContent = css;
  root.append(style);

  const el = (tag, props, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-") || k.startsWith("aria-") || k === "for" || k === "role") e.setAttribute(k, v);
      else e[k] = v;
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  const launcher = el("button", { class: "launcher", "data-testid": "wc-launcher", "aria-expanded": "false" }, "Chat");
  const panel = el("section", { class: "panel", "data-testid": "wc-panel", role: "dialog", "aria-label": "Chat" });
  panel.hidden = true;
  const title = el("h2", { "data-testid": "wc-title" }, "");
  const close = el("button", { "aria-label": "Close", "data-testid": "wc-close" }, "×"); // relabelled once the form's language is known
  const body = el("div", { class: "body" });
  panel.append(el("header", {}, null), body);
  panel.firstChild.append(title, close);
  root.append(launcher, panel);

  let token = null;
  try { token = localStorage.getItem(STORE); } catch { /* storage blocked */ }
  let form = null;
  let lang = wantLang;
  let after = null;
  let wsUrl = ds.ws || null;
  let ws = null;
  let backoff = 1000;
  let pollTimer = null;
  const shown = new Set();

  async function call(method, path, payload) {
    const headers = payload ? { "content-type": "application/json" } : {};
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(base + path, { method, headers, body: payload ? JSON.stringify(payload) : undefined, mode: "cors" });
    const json = await r.json().catch(() => ({}));
    return { status: r.status, body: json };
  }

  const nonce = () => (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).replace(/[^A-Za-z0-9_-]/g, "");

  launcher.addEventListener("click", () => toggle(panel.hidden));
  close.addEventListener("click", () => toggle(false));
  function toggle(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open && !body.childElementCount) start().catch((e) => { body.replaceChildren(el("p", { class: "error" }, e.message)); });
  }

  async function start() {
    if (token) {
      const r = await call("GET", "/webchat/conversation");
      if (r.status === 200) return chat(r.body);
      if (r.status === 401) { token = null; try { localStorage.removeItem(STORE); } catch { /* */ } }
    }
    const r = await call("GET", `/webchat/form?survey=${encodeURIComponent(survey)}&lang=${encodeURIComponent(wantLang)}`);
    if (r.status !== 200) throw new Error(t("down"));
    form = r.body;
    lang = form.language;
    close.setAttribute("aria-label", t("close"));
    if (form.ws_url && !wsUrl) wsUrl = form.ws_url;
    renderForm();
  }

  // --- The pre-chat form -----------------------------------------------------------------

  const inputs = {}; // key -> { field, wrap, read(), error }

  function renderForm() {
    title.textContent = form.title;
    launcher.textContent = form.title;
    const f = el("form", { "data-testid": "wc-form", noValidate: true });
    if (form.description) f.append(el("p", { class: "desc" }, form.description));
    for (const field of form.fields) f.append(renderField(field));
    const hp = el("div", { class: "hp", "aria-hidden": "true" });
    hp.append(el("input", { type: "text", name: "website", tabIndex: -1, autocomplete: "off", "data-testid": "wc-hp" }));
    f.append(hp);
    const submit = el("button", { type: "submit", class: "start", "data-testid": "wc-start" }, form.start_button);
    f.append(submit, el("p", { class: "error", role: "alert", "data-testid": "wc-form-error" }));
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!checkAll()) return;
      submit.disabled = true;
      try { await send(f); } finally { submit.disabled = false; }
    });
    f.addEventListener("change", applyWhen);
    f.addEventListener("input", applyWhen);
    body.replaceChildren(f);
    applyWhen();
  }

  function renderField(field) {
    const id = `wc-${field.key}`;
    const wrap = el("div", { class: "field", "data-testid": `wc-field-${field.key}`, "data-kind": field.kind });
    const err = el("p", { class: "error", id: `${id}-err`, role: "alert", "data-testid": `wc-error-${field.key}` });
    const req = field.required ? el("span", { class: "req", "aria-hidden": "true" }, "*") : null;
    const aria = { "aria-required": String(field.required), "aria-describedby": `${id}-err` };
    let read;
    const group = (type, options) => {
      const fs = el("fieldset", aria);
      const lg = el("legend", {}, field.label);
      if (req) lg.append(req);
      fs.append(lg, el("p", { class: "prompt" }, field.prompt));
      for (const o of options) {
        const l = el("label", { class: "opt" });
        l.append(el("input", { type, name: field.key, value: o.id, "data-testid": `wc-${field.key}-${o.id}` }), document.createTextNode(o.label));
        fs.append(l);
      }
      wrap.append(fs);
      read = () => { const c = fs.querySelector("input:checked"); return c ? c.value : ""; };
    };
    const labelled = (control) => {
      const l = el("label", { for: id }, field.label);
      if (req) l.append(req);
      wrap.append(l, el("p", { class: "prompt" }, field.prompt), control);
    };
    const input = (type, extra) => {
      const i = el("input", { type, id, name: field.key, placeholder: field.placeholder || "", "data-testid": `wc-input-${field.key}`, ...aria, ...(extra || {}) });
      return i;
    };
    switch (field.kind) {
      case "text": {
        const c = field.multiline
          ? el("textarea", { id, name: field.key, rows: 3, placeholder: field.placeholder || "", "data-testid": `wc-input-${field.key}`, ...aria })
          : input("text");
        c.maxLength = field.max_length;
        labelled(c);
        read = () => c.value;
        break;
      }
      case "email": { const c = input("email", { autocomplete: "email" }); labelled(c); read = () => c.value; break; }
      case "pattern": { const c = input("text"); labelled(c); read = () => c.value; break; }
      case "number": { const c = input("text", { inputMode: "decimal" }); labelled(c); read = () => c.value; break; }
      case "date": {
        const c = input("date");
        if (field.min) c.min = field.min;
        if (field.max) c.max = field.max;
        labelled(c);
        read = () => c.value;
        break;
      }
      case "phone": {
        const box = el("div", { class: "phone" });
        const cc = el("select", { "aria-label": `${field.label}: country code`, "data-testid": `wc-cc-${field.key}` });
        const names = regionNames();
        const mine = CALLING[lang] || "US";
        for (const c of field.calling_codes || []) {
          const o = el("option", { value: c.code }, `${names(c.country)} +${c.code}`);
          if (c.country === mine) o.selected = true;
          cc.append(o);
        }
        const num = input("tel", { autocomplete: "tel-national" });
        box.append(cc, num);
        labelled(box);
        read = () => {
          const v = num.value.trim();
          if (!v) return "";
          return v.startsWith("+") || v.startsWith("00") ? v : `+${cc.value} ${v.replace(/^0/, "")}`;
        };
        break;
      }
      case "country": {
        const c = el("select", { id, name: field.key, "data-testid": `wc-input-${field.key}`, ...aria });
        const names = regionNames();
        c.append(el("option", { value: "" }, "—"));
        const sorted = [...(field.countries || [])].sort((a, b) => names(a).localeCompare(names(b), lang));
        for (const code of sorted) c.append(el("option", { value: code }, names(code)));
        labelled(c);
        read = () => c.value;
        break;
      }
      case "choice":
        if (field.options.length <= 4) group("radio", field.options);
        else {
          const c = el("select", { id, name: field.key, "data-testid": `wc-input-${field.key}`, ...aria });
          c.append(el("option", { value: "" }, "—"));
          for (const o of field.options) c.append(el("option", { value: o.id }, o.label));
          labelled(c);
          read = () => c.value;
        }
        break;
      case "yes_no": group("radio", field.options); break;
      case "consent": {
        const box = el("input", { type: "checkbox", id, name: field.key, "data-testid": `wc-input-${field.key}`, ...aria });
        const l = el("label", { for: id, class: "opt" });
        l.append(box, document.createTextNode(field.text));
        if (req) l.append(req);
        const link = el("a", { href: /^https?:\/\//.test(field.policy_url) ? field.policy_url : "#", target: "_blank", rel: "noopener noreferrer" }, field.label);
        const meta = el("p", { class: "prompt" });
        meta.append(link, document.createTextNode(` · v${field.policy_version}`));
        wrap.append(l, meta);
        read = () => (box.checked ? "yes" : "no");
        break;
      }
      default: { const c = input("text"); labelled(c); read = () => c.value; }
    }
    wrap.append(err);
    inputs[field.key] = { field, wrap, read, err };
    return wrap;
  }

  function regionNames() {
    try {
      const d = new Intl.DisplayNames([lang], { type: "region" });
      return (code) => d.of(code) || code;
    } catch { return (code) => code; }
  }

  function visible(field) {
    const w = field.when;
    if (!w) return true;
    const dep = inputs[w.key];
    if (!dep || dep.wrap.hidden) return false;
    const v = dep.read();
    return w.equals !== undefined ? v === w.equals : (w.in || []).includes(v);
  }

  function applyWhen() {
    for (const { field, wrap } of Object.values(inputs)) wrap.hidden = !visible(field);
  }

  function today() {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  }

  // The browser's pre-check: the same validators as the server (shared test vectors).
  function check(key) {
    const { field, wrap, read, err } = inputs[key];
    const v = read();
    let ok = true;
    if (!v || (field.kind === "consent" && v !== "yes")) ok = !field.required;
    else if (V) {
      switch (field.kind) {
        case "email": ok = V.email(v) !== null; break;
        case "phone": ok = V.phone(v, null) !== null; break;
        case "number": ok = V.number(v, { min: field.min ?? null, max: field.max ?? null, integer: !!field.integer }) !== null; break;
        case "date": ok = V.date(v, { language: lang, today: today(), min: field.min || null, max: field.max || null }) !== null; break;
        case "text": ok = V.text(v, { min_length: field.min_length, max_length: field.max_length }) !== null; break;
        default: ok = true; // choices come from the lists; patterns: the server decides
      }
    }
    showError(key, ok ? "" : field.retry);
    return ok;
  }

  function showError(key, message) {
    const i = inputs[key];
    if (!i) return;
    i.err.textContent = message;
    i.wrap.classList.toggle("invalid", !!message);
  }

  function checkAll() {
    let ok = true;
    let first = null;
    for (const key of Object.keys(inputs)) {
      if (inputs[key].wrap.hidden) { showError(key, ""); continue; }
      if (!check(key)) { ok = false; first = first || key; }
    }
    if (first) { const c = inputs[first].wrap.querySelector("input, select, textarea"); if (c) c.focus(); }
    return ok;
  }

  async function send(f) {
    const answers = {};
    for (const [key, i] of Object.entries(inputs)) {
      if (i.wrap.hidden) continue;
      const v = i.read();
      if (v) answers[key] = v;
    }
    const website = f.querySelector('[name="website"]').value;
    const r = await call("POST", "/webchat/conversations", { survey, lang, answers, nonce: nonce(), website });
    const formError = f.querySelector('[data-testid="wc-form-error"]');
    formError.textContent = "";
    if (r.status === 422) {
      for (const e of r.body.errors || []) {
        if (inputs[e.key]) showError(e.key, e.message || inputs[e.key].field.retry);
        else formError.textContent = e.message || "";
      }
      return;
    }
    if (r.status !== 202 && r.status !== 200) {
      formError.textContent = r.status === 429 ? t("busy") : t("failed");
      return;
    }
    token = r.body.visitor_token || token;
    try { if (token) localStorage.setItem(STORE, token); } catch { /* storage blocked */ }
    chat(null);
  }

  // --- The chat --------------------------------------------------------------------------

  let list = null;
  let status = null;

  function chat(view) {
    title.textContent = (form && form.title) || title.textContent || "Chat";
    status = el("p", { class: "status", "data-testid": "wc-status", role: "status" }, "");
    list = el("div", { class: "msgs", "data-testid": "wc-messages", "aria-live": "polite" });
    body.replaceChildren(status, list);
    const box = el("form", { class: "send" });
    const text = el("textarea", { "aria-label": t("message"), "data-testid": "wc-text", maxLength: 4000 });
    const btn = el("button", { type: "submit", "data-testid": "wc-send", "aria-label": t("send") }, "➤");
    box.append(text, btn);
    panel.append(box);
    text.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); box.requestSubmit(); }
    });
    box.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = text.value.trim();
      if (!t) return;
      const r = await call("POST", "/webchat/messages", { text: t, nonce: nonce() });
      if (r.status === 202) {
        text.value = "";
        list.append(el("div", { class: "msg me", "data-testid": "wc-pending" }, t));
        settlePending(); // the push-driven re-read may already have shown it
        setTimeout(refresh, 400);
      }
    });
    if (view) render(view);
    refresh();
    connect();
  }

  function render(view) {
    if (view.state === "closed") status.textContent = t("closed");
    else if (view.agent_name) status.textContent = t("chatting", view.agent_name);
    else if (view.state === "waiting") status.textContent = t("waiting");
    for (const e of view.entries || []) {
      if (shown.has(e.id)) continue;
      shown.add(e.id);
      after = e.id;
      // GET /webchat/conversation names the author as a string (`contact`, `bot`, `agent`, `system`).
      const kind = typeof e.author === "string" ? e.author : "system";
      const mine = kind === "contact";
      if (e.type === "closed" || e.type === "event") {
        if (e.type === "closed") list.append(el("div", { class: "note", "data-testid": "wc-note" }, t("closed")));
        continue;
      }
      const text = e.text || e.title || e.value || (e.type === "answer" ? `${e.question}: ${e.value}` : "");
      if (!text) continue;
      const m = el("div", { class: `msg ${mine ? "me" : "them"}`, "data-testid": mine ? "wc-mine" : "wc-theirs" });
      if (!mine && kind === "agent") m.append(el("span", { class: "who" }, view.agent_name || t("agent")));
      m.append(document.createTextNode(text));
      list.append(m);
    }
    settlePending();
    body.scrollTop = body.scrollHeight;
  }

  // A sent message shows at once; its bubble goes once the conversation read has it.
  function settlePending() {
    for (const p of list.querySelectorAll('[data-testid="wc-pending"]')) {
      if ([...list.querySelectorAll('[data-testid="wc-mine"]')].some((m) => m.textContent === p.textContent)) p.remove();
    }
  }

  // Entries are ordered by their writers' clocks, and a write may land a moment after a later
  // one was read: re-read the last few seconds each time (what was shown is skipped by id).
  function lookback(id) {
    const m = /^T#(\d{13})#/.exec(id);
    if (!m) return id;
    return `T#${String(Math.max(0, Number(m[1]) - 10000)).padStart(13, "0")}#0`;
  }

  async function refresh() {
    clearTimeout(pollTimer);
    try {
      const q = after ? `?after=${encodeURIComponent(lookback(after))}` : "";
      const r = await call("GET", `/webchat/conversation${q}`);
      if (r.status === 200) render(r.body);
    } catch { /* offline: the next poll catches up */ }
    pollTimer = setTimeout(refresh, ws && ws.readyState === 1 ? 30000 : 3000);
  }

  function connect() {
    if (!wsUrl || !token) return;
    try { ws = new WebSocket(`${wsUrl}${wsUrl.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`); } catch { return; }
    ws.onopen = () => { backoff = 1000; refresh(); };
    ws.onmessage = () => refresh(); // a push is a hint: re-read what is new
    ws.onclose = () => { ws = null; setTimeout(connect, backoff + Math.random() * 300); backoff = Math.min(backoff * 2, 30000); };
  }

  if (token) toggle(false); // panel stays closed until the visitor opens it
})();
