// The prechat agent inbox: sign-in against the Cognito user pool (InitiateAuth, no hosted UI),
// tokens in sessionStorage only, the agent API for everything else. Live updates come over the
// WebSocket of /inbox/config.json (`ws_url`, token in the query string); every push is a hint
// to re-read through the API. While the socket is down the page polls every 3 s (backing off on
// errors). Everything a contact wrote is put on the page with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKENS = "prechat.inbox.tokens";
  const SEEN = "prechat.inbox.seen";
  const POLL_MS = 3000;
  const POLL_MAX_MS = 30000;
  const WS_PING_MS = 5 * 60 * 1000;

  let cfg = null;
  let tokens = null;
  let me = null;
  let tab = "assigned";
  const lists = { assigned: [], waiting: [], closed: [] };
  const info = {}; // conversation id -> { after, lastContactAt, unread }
  let seen = readJson(SEEN) || {};
  let known = null; // ids of my conversations seen so far (null before the first load)
  let current = null;
  let view = null;
  let entries = new Map();
  let after = null;
  let challenge = null;
  let refreshTimer = null;
  let pollTimer = null;
  let pollDelay = POLL_MS;
  let ws = null;
  let wsUp = false;
  let wsBackoff = 1000;
  let wsTimer = null;
  let pingTimer = null;
  let sendKey = null;
  let stopped = true;

  function readJson(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch { return null; }
  }

  function el(tag, props, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function ago(ms) {
    if (!ms) return "";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
    return `${Math.floor(s / 86400)}d ago`;
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  // --- Cognito (the user-pool API) -------------------------------------------------------

  async function cognito(target, body) {
    const r = await fetch(cfg.cognito_endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `AWSCognitoIdentityProviderService.${target}`,
      },
      body: JSON.stringify(body),
    });
    const json = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(json.message || json.__type || `sign-in failed (${r.status})`);
    return json;
  }

  function keep(result) {
    tokens = {
      access: result.AccessToken,
      id: result.IdToken,
      refresh: result.RefreshToken || (tokens && tokens.refresh),
      exp: Date.now() + (result.ExpiresIn || 3600) * 1000,
    };
    sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
    scheduleRefresh();
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!tokens) return;
    const wait = Math.max(5000, tokens.exp - Date.now() - 60000);
    refreshTimer = setTimeout(() => refresh().catch(() => signOut("Your session ended; sign in again.")), wait);
  }

  async function refresh() {
    if (!tokens || !tokens.refresh) throw new Error("no refresh token");
    const r = await cognito("InitiateAuth", {
      ClientId: cfg.client_id,
      AuthFlow: "REFRESH_TOKEN_AUTH",
      AuthParameters: { REFRESH_TOKEN: tokens.refresh },
    });
    keep(r.AuthenticationResult);
  }

  async function signIn(username, password) {
    const r = await cognito("InitiateAuth", {
      ClientId: cfg.client_id,
      AuthFlow: "USER_PASSWORD_AUTH",
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    if (r.ChallengeName === "NEW_PASSWORD_REQUIRED") {
      challenge = { session: r.Session, username };
      $("signin-form").hidden = true;
      $("newpw-form").hidden = false;
      return;
    }
    if (!r.AuthenticationResult) throw new Error(`unsupported sign-in step ${r.ChallengeName || ""}`);
    keep(r.AuthenticationResult);
    await start();
  }

  async function newPassword(password) {
    const r = await cognito("RespondToAuthChallenge", {
      ClientId: cfg.client_id,
      ChallengeName: "NEW_PASSWORD_REQUIRED",
      Session: challenge.session,
      ChallengeResponses: { USERNAME: challenge.username, NEW_PASSWORD: password },
    });
    challenge = null;
    keep(r.AuthenticationResult);
    await start();
  }

  function signOut(message) {
    stopped = true;
    tokens = null;
    sessionStorage.removeItem(TOKENS);
    sessionStorage.removeItem(SEEN);
    clearTimeout(refreshTimer);
    clearTimeout(pollTimer);
    clearTimeout(wsTimer);
    clearInterval(pingTimer);
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    wsUp = false;
    current = null;
    known = null;
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-form").hidden = false;
    $("newpw-form").hidden = true;
    $("password").value = "";
    $("signin-error").textContent = message || "";
    document.title = "prechat inbox";
  }

  // --- The agent API ---------------------------------------------------------------------

  async function api(method, path, body, headers) {
    const call = () => fetch(cfg.api_base + path, {
      method,
      headers: { authorization: `Bearer ${tokens.access}`, ...(body ? { "content-type": "application/json" } : {}), ...(headers || {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    let r = await call();
    if (r.status === 401 && tokens && tokens.refresh) {
      await refresh().catch(() => {});
      r = await call();
    }
    if (r.status === 401) {
      signOut("Your session ended; sign in again.");
      throw new Error("unauthorized");
    }
    const json = await r.json().catch(() => ({}));
    return { status: r.status, body: json };
  }

  // --- The conversation list -------------------------------------------------------------

  function activity(c) {
    const i = info[c.id] || {};
    return Math.max(i.lastContactAt || 0, (c.closed_at || c.assigned_at || c.requested_at || 0) * 1000);
  }

  async function peek(c) {
    const i = info[c.id] || (info[c.id] = { after: null, lastContactAt: 0, unread: 0, handedOff: false });
    const q = i.after ? `&after=${encodeURIComponent(i.after)}` : "";
    const r = await api("GET", `/api/conversations/${encodeURIComponent(c.id)}?peek=true&limit=100${q}`);
    if (r.status !== 200) return;
    const page = r.body.transcript || {};
    for (const e of page.entries || []) {
      // The survey's answers are on the answers card: unread counts what came after the hand-off.
      if (e.type === "event") i.handedOff = true;
      if (e.author && e.author.kind === "contact") {
        i.lastContactAt = Math.max(i.lastContactAt, e.at);
        if (i.handedOff && c.id !== current && (!seen[c.id] || e.id > seen[c.id])) i.unread += 1;
      }
    }
    if (page.after) i.after = page.after;
  }

  async function loadLists() {
    const states = ["assigned", "waiting", "closed"];
    const answers = await Promise.all(states.map((s) => api("GET", `/api/conversations?state=${s}`)));
    answers.forEach((r, n) => {
      if (r.status !== 200) throw new Error(`list ${states[n]}: ${r.status}`);
      lists[states[n]] = r.body.conversations || [];
    });
    await Promise.all([...lists.assigned, ...lists.waiting].map((c) => peek(c).catch(() => {})));
    const mine = new Set(lists.assigned.map((c) => c.id));
    if (known) {
      const fresh = [...mine].filter((id) => !known.has(id));
      if (fresh.length) chime();
    }
    known = mine;
    renderList();
  }

  function renderList() {
    const items = [...lists[tab]];
    const place = {};
    const perTeam = {};
    for (const c of lists.waiting) {
      perTeam[c.team] = (perTeam[c.team] || 0) + 1;
      place[c.id] = perTeam[c.team];
    }
    if (tab !== "waiting") items.sort((a, b) => activity(b) - activity(a));
    const ul = $("list");
    ul.replaceChildren();
    for (const c of items) {
      const i = info[c.id] || {};
      const li = el("li", { "data-testid": "conv-item", "data-id": c.id, "data-state": c.state });
      if (c.id === current) li.classList.add("selected");
      const contact = c.contact || {};
      const who = el("span", { class: "who" });
      who.append(el("span", { class: "name", "data-testid": "conv-item-name" }, contact.name || contact.phone || contact.username || "(no name)"));
      who.append(channelBadge(c.channel, "conv-item-channel"));
      li.append(who);
      if (c.id !== current && i.unread > 0) li.append(el("span", { class: "unread", "data-testid": "unread" }, i.unread));
      else li.append(el("span"));
      const where = c.state === "waiting" ? `#${place[c.id] || "?"} in line` : c.agent ? `agent ${c.agent}` : c.state;
      const vip = c.vip ? "VIP · " : "";
      li.append(el("span", { class: "sub" }, `${vip}${c.team} · ${where}${i.lastContactAt ? " · " + ago(i.lastContactAt) : ""}`));
      li.addEventListener("click", () => open(c.id));
      ul.append(li);
    }
    $("list-empty").hidden = items.length > 0;
    for (const t of ["assigned", "waiting"]) {
      const n = t === "assigned" ? unreadTotal() : lists.waiting.length;
      document.querySelector(`[data-count="${t}"]`).textContent = n ? String(n) : "";
    }
    const total = unreadTotal();
    document.title = total ? `(${total}) prechat inbox` : "prechat inbox";
  }

  /** The conversation's channel, shown next to the contact: "Web" or "WhatsApp". */
  function channelBadge(channel, testid) {
    const web = channel === "web";
    return el("span", { class: web ? "channel web" : "channel", "data-testid": testid, "data-channel": web ? "web" : "whatsapp" }, web ? "Web" : "WhatsApp");
  }

  function unreadTotal() {
    return lists.assigned.reduce((n, c) => n + (c.id === current ? 0 : (info[c.id] || {}).unread || 0), 0);
  }

  function chime() {
    if (!$("sound").checked) return;
    try {
      const ctx = new AudioContext();
      const o = ctx.createOscillator();
      o.frequency.value = 880;
      o.connect(ctx.destination);
      o.start();
      o.stop(ctx.currentTime + 0.15);
    } catch { /* no audio */ }
  }

  // --- One conversation ------------------------------------------------------------------

  async function open(id) {
    current = id;
    entries = new Map();
    after = null;
    view = null;
    if (info[id]) info[id].unread = 0;
    $("placeholder").hidden = true;
    $("conv").hidden = false;
    $("details").hidden = false;
    $("reply-error").textContent = "";
    await readConversation(true);
    renderList();
    await fillTransfer();
  }

  async function readConversation(full) {
    if (!current) return;
    const id = current;
    // Only what is new, unless a reply's ticks may still change (then the newest page again).
    const q = !full && !ticksPending() && after ? `?after=${encodeURIComponent(after)}` : "?limit=100";
    const r = await api("GET", `/api/conversations/${encodeURIComponent(id)}${q}`);
    if (id !== current) return;
    if (r.status === 404) { current = null; $("conv").hidden = true; $("details").hidden = true; $("placeholder").hidden = false; return; }
    if (r.status !== 200) throw new Error(`conversation: ${r.status}`);
    const windowWas = view && view.window_open;
    view = r.body;
    const page = view.transcript || {};
    for (const e of page.entries || []) entries.set(e.id, e);
    if (page.after) after = page.after;
    const last = [...entries.keys()].sort().pop();
    if (last) { seen[id] = last; sessionStorage.setItem(SEEN, JSON.stringify(seen)); }
    if (info[id]) { info[id].unread = 0; if (page.after) info[id].after = page.after; }
    renderConversation();
    if (windowWas !== view.window_open && !view.window_open) await fillTemplates();
  }

  // Delivery ticks change entries already shown: re-read the newest page while any is pending.
  function ticksPending() {
    return [...entries.values()].some((e) => e.author && e.author.kind === "agent" && !["read", "failed"].includes(e.status));
  }

  function renderConversation() {
    const c = view.contact || {};
    $("c-name").textContent = c.name || c.phone || c.username || "(no name)";
    $("c-vip").hidden = !(lists.assigned.concat(lists.waiting, lists.closed).find((x) => x.id === view.id) || {}).vip;
    const badge = channelBadge(view.channel, "conv-channel");
    $("c-channel").className = badge.className;
    $("c-channel").dataset.channel = badge.dataset.channel;
    $("c-channel").textContent = badge.textContent;
    $("c-who").textContent = c.phone ? `+${c.phone}` : c.username ? `@${c.username}` : "";
    $("c-meta").textContent = `${view.team} · ${view.state}${view.agent ? " · " + view.agent : ""}`;
    const open = view.state !== "closed";
    $("close").disabled = !open;
    $("transfer").disabled = !open;
    $("window-note").hidden = view.window_open || !open;
    $("window-note").textContent = view.window_open ? "" : "The contact last wrote more than 24 hours ago: WhatsApp allows only an approved template.";
    $("text-reply").hidden = !view.window_open || !open;
    $("template-reply").hidden = view.window_open || !open;
    renderAnswers();
    renderTranscript();
  }

  function renderAnswers() {
    const dl = $("answers");
    dl.replaceChildren();
    for (const a of view.answers || []) {
      dl.append(el("dt", {}, a.label || a.key), el("dd", { "data-testid": "answer", title: a.value }, a.display || a.value));
    }
    const k = view.consent;
    $("consent").textContent = k
      ? `Consent ${k.accepted ? "given" : "refused"} · policy version ${k.policy_version} · ${new Date(k.at * 1000).toLocaleString()}`
      : "No consent recorded.";
  }

  function kindOf(e) { return (e.author && e.author.kind) || "system"; }

  function textOf(e) {
    switch (e.type) {
      case "text": return e.text;
      case "reply": return e.title;
      case "media": return `[${e.media_type}]${e.caption ? " " + e.caption : ""}`;
      case "location": return `[location] ${[e.name, e.address].filter(Boolean).join(", ")} (${e.latitude}, ${e.longitude})`;
      case "question": return e.text;
      case "answer": return `${e.question}: ${e.value}`;
      case "template": return `[template ${e.name} · ${e.language}]`;
      case "event": return eventText(e.event || {});
      case "other": return `[${e.description}]`;
      default: return `[${e.type}]`;
    }
  }

  function eventText(ev) {
    switch (ev.name) {
      case "assigned": return `Assigned to ${ev.agent_id} (${ev.team})`;
      case "transferred": return `Transferred to ${ev.to_agent ? ev.to_agent + " in " : ""}${ev.to_team}`;
      case "closed": return `Closed by ${ev.by}`;
      case "reopened": return "Reopened";
      default: return ev.name || "event";
    }
  }

  const RANKS = { pending: 0, sent: 1, delivered: 2, read: 3, failed: 4 };
  const rank = (status) => (status in RANKS ? RANKS[status] : -1);

  const TICKS = { pending: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠ failed" };

  function bubble(e) {
    const kind = kindOf(e);
    if (e.type === "event") return el("div", { class: "event", "data-testid": "event" }, textOf(e));
    const d = el("div", { class: `msg ${kind}`, "data-testid": `msg-${kind}`, "data-id": e.id });
    d.append(el("span", { class: "body", "data-testid": "msg-text" }, textOf(e)));
    const meta = el("span", { class: "meta" }, clock(e.at));
    if (kind === "agent" && e.status) {
      meta.append(el("span", { class: `tick ${e.status}`, "data-testid": "tick", "data-status": e.status, title: e.status }, TICKS[e.status] || e.status));
    }
    d.append(meta);
    return d;
  }

  function renderTranscript() {
    const box = $("transcript");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const wasOpen = !!box.querySelector("details[open]");
    const list = [...entries.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    // The survey part: everything before the hand-off (the first event or agent message).
    let fold = list.findIndex((e) => e.type === "event" || kindOf(e) === "agent");
    if (fold < 0) {
      let lastSurvey = -1;
      list.forEach((e, i) => { if (kindOf(e) === "bot" || e.type === "question" || e.type === "answer") lastSurvey = i; });
      fold = lastSurvey + 1;
    }
    box.replaceChildren();
    if (fold > 0) {
      const details = el("details", { class: "survey", "data-testid": "survey-fold" });
      details.open = wasOpen;
      details.append(el("summary", {}, `Pre-chat survey (${fold} messages)`));
      for (const e of list.slice(0, fold)) details.append(bubble(e));
      box.append(details);
    }
    for (const e of list.slice(fold)) box.append(bubble(e));
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  async function fillTemplates() {
    const sel = $("template");
    sel.replaceChildren();
    const r = await api("GET", `/api/templates?team=${encodeURIComponent(view.team)}`);
    const list = (r.status === 200 && r.body.templates) || [];
    for (const t of list) {
      const o = el("option", { value: t.name }, `${t.name} (${t.kind}${t.parameters.length ? ": " + t.parameters.join(", ") : ""})`);
      sel.append(o);
    }
    $("send-template").disabled = list.length === 0;
    if (!list.length) sel.append(el("option", { value: "" }, "no approved templates for this team"));
  }

  async function fillTransfer() {
    const sel = $("transfer-to");
    sel.replaceChildren(el("option", { value: "" }, "Transfer to…"));
    if (!view) return;
    const teams = new Set([view.team, ...((me && me.teams) || []), ...((me && me.leads) || [])]);
    for (const t of teams) sel.append(el("option", { value: `team:${t}` }, `team ${t} (waiting line)`));
    const r = await api("GET", `/api/teams/${encodeURIComponent(view.team)}/agents?status=online`);
    for (const a of (r.status === 200 && r.body.agents) || []) {
      if (me && a.id === me.id) continue;
      sel.append(el("option", { value: `agent:${a.id}` }, `${a.name} (${a.open}/${a.capacity})`));
    }
  }

  async function send(body) {
    $("reply-error").textContent = "";
    // One key per message: a retry after a lost answer sends nothing twice.
    sendKey = sendKey || crypto.randomUUID();
    const r = await api("POST", `/api/conversations/${encodeURIComponent(current)}/messages`, body, { "idempotency-key": sendKey });
    if (r.status === 202) {
      sendKey = null;
      entries.set(r.body.message.id, r.body.message);
      renderTranscript();
      return true;
    }
    if (r.status < 500) sendKey = null;
    $("reply-error").textContent = (r.body.error && r.body.error.message) || `not sent (${r.status})`;
    if (r.body.error && r.body.error.code === "outside_window") await readConversation(true);
    return false;
  }

  // --- Live updates: WebSocket, else polling ---------------------------------------------

  function setLive() {
    $("live").textContent = wsUp ? "live" : "polling";
    $("live").classList.toggle("down", !wsUp);
  }

  function connectWs() {
    if (stopped || !cfg.ws_url || !tokens) { setLive(); return; }
    const url = cfg.ws_url + (cfg.ws_url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(tokens.access);
    try { ws = new WebSocket(url); } catch { retryWs(); return; }
    ws.onopen = () => {
      wsUp = true;
      wsBackoff = 1000;
      setLive();
      clearInterval(pingTimer);
      pingTimer = setInterval(() => ws && ws.readyState === 1 && ws.send(JSON.stringify({ type: "ping" })), WS_PING_MS);
      catchUp(); // what happened while disconnected
    };
    ws.onmessage = (m) => {
      let push;
      try { push = JSON.parse(m.data); } catch { return; }
      if (!push || push.type === "pong") return;
      if (push.conversation_id && push.conversation_id === current) {
        if (push.type === "message.status" && push.entry && entries.has(push.entry.id)) {
          // A tick carries the entry's id and status only: merged, and only ever forward.
          const had = entries.get(push.entry.id);
          if (rank(push.entry.status) > rank(had.status)) {
            entries.set(push.entry.id, { ...had, ...push.entry });
            renderTranscript();
          }
        } else {
          readConversation(false).catch(() => {});
        }
      }
      if (push.type !== "message.status") loadLists().catch(() => {});
    };
    ws.onclose = () => { wsUp = false; clearInterval(pingTimer); setLive(); retryWs(); };
  }

  function retryWs() {
    if (stopped) return;
    clearTimeout(wsTimer);
    const jitter = Math.random() * 0.3 * wsBackoff;
    wsTimer = setTimeout(connectWs, wsBackoff + jitter);
    wsBackoff = Math.min(wsBackoff * 2, 60000);
  }

  async function catchUp() {
    await loadLists();
    if (current) await readConversation(false);
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (stopped) return;
    // With the socket up a slow safety poll; without it every 3 s, backing off on errors.
    pollTimer = setTimeout(async () => {
      try {
        await catchUp();
        pollDelay = POLL_MS;
      } catch {
        pollDelay = Math.min(pollDelay * 2, POLL_MAX_MS);
      }
      schedulePoll();
    }, wsUp ? 60000 : pollDelay);
  }

  // --- Start -----------------------------------------------------------------------------

  async function start() {
    stopped = false;
    $("signin").hidden = true;
    $("app").hidden = false;
    const r = await api("GET", "/api/me");
    me = r.status === 200 ? r.body : null;
    $("me").textContent = me ? `${me.name} (${me.id})` : "not an agent";
    $("presence").disabled = !me;
    if (me) $("presence").value = me.status;
    selectTab(tab);
    setLive();
    await loadLists();
    connectWs();
    schedulePoll();
  }

  function selectTab(t) {
    tab = t;
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === t);
    renderList();
  }

  async function main() {
    cfg = await (await fetch("/inbox/config.json")).json();
    $("signin-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      $("signin-error").textContent = "";
      signIn($("username").value.trim(), $("password").value).catch((e) => { $("signin-error").textContent = e.message; });
    });
    $("newpw-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      newPassword($("newpw").value).catch((e) => { $("signin-error").textContent = e.message; });
    });
    $("signout").addEventListener("click", () => signOut());
    for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => selectTab(b.dataset.tab));
    $("presence").addEventListener("change", async () => {
      const r = await api("PUT", "/api/me/status", { status: $("presence").value });
      if (r.status === 200) me = r.body;
    });
    $("reply").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $("reply-form").requestSubmit();
      }
    });
    $("reply-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = $("reply").value;
      if (!text.trim() || !current) return;
      if (await send({ text })) $("reply").value = "";
    });
    $("send-template").addEventListener("click", async () => {
      const name = $("template").value;
      if (!name || !current) return;
      const parameters = $("template-params").value.split(",").map((s) => s.trim()).filter(Boolean);
      await send({ template: { name, language: view.language || "en", parameters } });
    });
    $("close").addEventListener("click", async () => {
      if (!current) return;
      const r = await api("POST", `/api/conversations/${encodeURIComponent(current)}/close`);
      if (r.status !== 200) { $("reply-error").textContent = (r.body.error && r.body.error.message) || "not closed"; return; }
      await readConversation(true);
      await loadLists();
    });
    $("transfer").addEventListener("click", async () => {
      const to = $("transfer-to").value;
      if (!to || !current) return;
      const [kind, id] = to.split(/:(.*)/s);
      const r = await api("POST", `/api/conversations/${encodeURIComponent(current)}/transfer`, { [kind]: id });
      if (r.status !== 200) { $("reply-error").textContent = (r.body.error && r.body.error.message) || "not transferred"; return; }
      await readConversation(true).catch(() => {});
      await loadLists();
    });
    setInterval(() => { if (!stopped) renderList(); }, 30000); // "time since" stays fresh
    if (!cfg.client_id) {
      $("signin").hidden = false;
      $("signin-error").textContent = "Sign-in is not configured (no user pool client).";
      return;
    }
    tokens = readJson(TOKENS);
    if (tokens && tokens.exp > Date.now() + 5000) {
      scheduleRefresh();
      await start().catch(() => signOut());
    } else if (tokens && tokens.refresh) {
      await refresh().then(start).catch(() => signOut());
    } else {
      signOut();
    }
  }

  main();
})();
