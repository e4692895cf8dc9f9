// The Headcount demo page: watch one topic's counts over the Phoenix
// protocol, sign in as a demo user, and show the cluster this node sees.
"use strict";

(function () {
  const TOPICS = ["lobby", "video:intro", "room:42", "article:crdt"];
  const USERS = ["alice", "bob", "carol", "dave"];
  const MEMBERS_EVERY_MS = 2000;
  const LOG_LINES = 14;
  const HISTORY_POINTS = 120; // one a second: two minutes

  const $ = (id) => document.getElementById(id);
  const state = {
    topic: null,
    channel: null,
    token: sessionStorage.getItem("headcount.token") || "",
    user: sessionStorage.getItem("headcount.user") || "",
    expiresAt: Number(sessionStorage.getItem("headcount.expires")) || 0,
    counts: { viewers: 0, users: 0 },
    history: [],
  };

  const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/socket/websocket";
  const socket = new window.PhoenixSocket(wsURL, () => (state.token ? { token: state.token } : {}));

  // ---- counts ----------------------------------------------------------

  function showCount(kind, n) {
    const el = $(kind);
    const old = Number(el.dataset.count);
    el.dataset.count = String(n);
    el.textContent = String(n);
    if (old !== n) {
      const box = $(kind + "-box");
      box.classList.remove("bump");
      void box.offsetWidth; // restart the animation
      box.classList.add("bump");
    }
  }

  function render() {
    showCount("viewers", state.counts.viewers);
    showCount("users", state.counts.users);
    drawHistory();
    renderBusiest();
  }

  // ---- history chart ---------------------------------------------------

  // sample appends the current counts once a second.
  function sample() {
    state.history.push({ viewers: state.counts.viewers, users: state.counts.users });
    if (state.history.length > HISTORY_POINTS) state.history.shift();
    drawHistory();
  }

  function drawHistory() {
    const canvas = $("history");
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const points = state.history.concat([{ viewers: state.counts.viewers, users: state.counts.users }]);
    const top = Math.max(4, ...points.map((p) => Math.max(p.viewers, p.users)));
    const pad = 12;
    const x = (i) => pad + (w - 2 * pad) * (HISTORY_POINTS - points.length + 1 + i) / HISTORY_POINTS;
    const y = (v) => h - pad - (h - 2 * pad) * v / top;
    g.strokeStyle = "rgba(139, 151, 179, 0.15)";
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      g.beginPath();
      g.moveTo(pad, y(top * i / 4));
      g.lineTo(w - pad, y(top * i / 4));
      g.stroke();
    }
    const css = getComputedStyle(document.documentElement);
    for (const [kind, color] of [["viewers", css.getPropertyValue("--green")], ["users", css.getPropertyValue("--blue")]]) {
      g.strokeStyle = color.trim();
      g.lineWidth = 2.5;
      g.lineJoin = "round";
      g.beginPath();
      points.forEach((p, i) => {
        // steps: a count holds until it changes
        if (i === 0) g.moveTo(x(i), y(p[kind]));
        else { g.lineTo(x(i), y(points[i - 1][kind])); g.lineTo(x(i), y(p[kind])); }
      });
      g.stroke();
    }
    g.fillStyle = css.getPropertyValue("--muted").trim();
    g.font = "11px ui-monospace, Menlo, Consolas, monospace";
    g.fillText(String(top), pad + 2, pad + 8);
  }

  const countOf = (part, kind) => (part && part[kind] && Number(part[kind].count)) || 0;

  // presence_state replaces the counts; presence_diff adds joins and removes leaves.
  function onState(payload) {
    state.counts = { viewers: countOf(payload, "viewers"), users: countOf(payload, "users") };
    render();
  }

  function onDiff(payload) {
    for (const kind of ["viewers", "users"]) {
      state.counts[kind] += countOf(payload.joins, kind) - countOf(payload.leaves, kind);
    }
    render();
  }

  // ---- topic -----------------------------------------------------------

  function watch(topic) {
    topic = topic.trim();
    if (!topic || topic === state.topic) return;
    if (state.channel) state.channel.leave();
    unobserve(topic); // the tracked channel below replaces the list's observer
    state.topic = topic;
    state.counts = { viewers: 0, users: 0 };
    state.history = [];
    render();
    $("current-topic").textContent = topic;
    $("topic-input").value = topic;
    history.replaceState(null, "", "#topic=" + encodeURIComponent(topic));
    for (const chip of $("topic-chips").children) chip.classList.toggle("on", chip.dataset.value === topic);
    const ch = socket.channel(topic, {});
    ch.on("presence_state", onState).on("presence_diff", onDiff);
    ch.on("error", (p) => log("error", topic + " " + JSON.stringify(p || {})));
    state.channel = ch;
    ch.join();
  }

  function topicFromHash() {
    const m = /(?:^#|&)topic=([^&]*)/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : "";
  }

  // ---- identity --------------------------------------------------------

  function showIdentity() {
    $("me").textContent = state.user ? state.user : "an anonymous viewer";
    $("me").classList.toggle("signed", !!state.user);
    $("signout").hidden = !state.user;
    for (const chip of $("user-chips").children) chip.classList.toggle("on", chip.dataset.value === state.user);
  }

  // reconnect opens a new socket so the node sees the new token.
  function reconnect() {
    socket.disconnect();
    socket.connect();
  }

  async function signIn(user) {
    user = user.trim();
    if (!user) return;
    try {
      const resp = await fetch("/v1/demo/token?user=" + encodeURIComponent(user), { method: "POST" });
      if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()).trim());
      const body = await resp.json();
      state.token = body.token;
      state.user = user;
      state.expiresAt = Date.parse(body.expires_at) || 0;
      sessionStorage.setItem("headcount.token", state.token);
      sessionStorage.setItem("headcount.user", user);
      sessionStorage.setItem("headcount.expires", String(state.expiresAt));
      $("signin-input").value = "";
      log("auth", "signed in as " + user);
      showIdentity();
      reconnect();
    } catch (err) {
      log("error", "sign in failed: " + err.message);
      $("signin-note").textContent = "Sign in failed (" + err.message + ").";
    }
  }

  function signOut() {
    state.token = "";
    state.user = "";
    sessionStorage.removeItem("headcount.token");
    sessionStorage.removeItem("headcount.user");
    sessionStorage.removeItem("headcount.expires");
    log("auth", "signed out");
    showIdentity();
    reconnect();
  }

  // Demo tokens exist only when the node runs with --demo-tokens: ask once.
  async function probeDemoTokens() {
    let enabled = false;
    try {
      const resp = await fetch("/v1/demo/token", { method: "POST" });
      enabled = resp.status !== 404 && resp.status !== 405;
    } catch (_) { /* node unreachable: keep the form hidden */ }
    $("signin-form").hidden = !enabled;
    if (!enabled) {
      $("signin-note").textContent = "Sign-in is off on this node (start it with --demo-tokens to try users).";
      if (state.user) signOut();
    }
  }

  // ---- cluster ---------------------------------------------------------

  async function pollMembers() {
    try {
      const resp = await fetch("/v1/members", { cache: "no-store" });
      if (!resp.ok) throw new Error(String(resp.status));
      let members = await resp.json();
      if (!Array.isArray(members)) members = members.members || [];
      renderMembers(members);
    } catch (_) {
      $("members").classList.add("stale");
    }
  }

  function renderMembers(members) {
    members.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    const list = $("members");
    list.classList.remove("stale");
    list.replaceChildren();
    let alive = 0;
    for (const m of members) {
      const status = String(m.status || "unknown").toLowerCase();
      if (status === "alive") alive++;
      if (m.self) $("node-name").textContent = m.name;
      const li = document.createElement("li");
      li.className = "member " + status + (m.self ? " self" : "");
      const dot = document.createElement("span");
      dot.className = "dot";
      const name = document.createElement(m.http && !m.self ? "a" : "span");
      name.className = "name";
      name.textContent = m.name;
      if (m.http && !m.self) {
        name.href = "http://" + m.http + "/" + location.hash;
        name.title = "open this topic on " + m.name;
      }
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = (m.self ? "this node · " : "") + status + (m.http ? " · " + m.http : "");
      li.append(dot, name, meta);
      list.append(li);
    }
    $("member-count").textContent = alive + " of " + members.length + " alive";
  }

  // ---- busiest topics ----------------------------------------------------
  // The list page of the readers API: GET /v1/topics?prefix= names the busiest topics, and
  // each is observed over this page's socket ({observe: true}: counted by no one) so its
  // counts stay live between two refreshes; "*" is the whole site's roll-up. A socket has one
  // channel per topic, so the topic this page watches (tracked) is not observed as well: its
  // row shows the page's own counts.

  const BUSIEST_EVERY_MS = 3000;
  const BUSIEST_LIMIT = 8;
  const observed = new Map(); // topic -> {channel, counts}
  let busiest = [];

  function observe(topic) {
    if (observed.has(topic) || topic === state.topic) return;
    const entry = { counts: { viewers: 0, users: 0 } };
    const ch = socket.channel(topic, { observe: true });
    ch.on("presence_state", (p) => {
      entry.counts = { viewers: countOf(p, "viewers"), users: countOf(p, "users") };
      renderBusiest();
    });
    ch.on("presence_diff", (p) => {
      for (const kind of ["viewers", "users"]) entry.counts[kind] += countOf(p.joins, kind) - countOf(p.leaves, kind);
      renderBusiest();
    });
    entry.channel = ch;
    observed.set(topic, entry);
    ch.join();
  }

  function unobserve(topic) {
    const entry = observed.get(topic);
    if (!entry) return;
    entry.channel.leave();
    observed.delete(topic);
  }

  async function pollBusiest() {
    try {
      const resp = await fetch("/v1/topics?prefix=&limit=" + BUSIEST_LIMIT, { cache: "no-store" });
      if (!resp.ok) throw new Error(String(resp.status));
      const body = await resp.json();
      busiest = (body.topics || []).map((t) => t.topic);
      for (const t of busiest) observe(t);
      for (const t of [...observed.keys()]) if (t !== "*" && !busiest.includes(t)) unobserve(t);
      $("busiest").classList.remove("stale");
      renderBusiest();
    } catch (_) {
      $("busiest").classList.add("stale");
    }
  }

  function renderBusiest() {
    const site = observed.get("*");
    if (site) {
      $("site-viewers").textContent = String(site.counts.viewers);
      $("site-users").textContent = String(site.counts.users);
    }
    const rows = busiest
      .filter((t) => observed.has(t) || t === state.topic)
      .map((t) => ({ topic: t, ...(t === state.topic ? state.counts : observed.get(t).counts) }))
      .sort((a, b) => b.viewers + b.users - (a.viewers + a.users) || a.topic.localeCompare(b.topic));
    const list = $("busiest");
    list.replaceChildren();
    for (const r of rows) {
      const li = document.createElement("li");
      li.dataset.topic = r.topic;
      li.dataset.viewers = String(r.viewers);
      li.dataset.users = String(r.users);
      const name = document.createElement("button");
      name.type = "button";
      name.className = "name" + (r.topic === state.topic ? " on" : "");
      name.textContent = r.topic;
      name.title = "watch " + r.topic;
      name.addEventListener("click", () => watch(r.topic));
      const counts = document.createElement("span");
      counts.className = "meta";
      counts.textContent = r.viewers + " viewers · " + r.users + " users";
      li.append(name, counts);
      list.append(li);
    }
    if (!rows.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "no one anywhere yet";
      list.append(li);
    }
  }

  // ---- wire log --------------------------------------------------------

  function log(kind, text) {
    const li = document.createElement("li");
    li.className = kind;
    const t = document.createElement("time");
    t.textContent = new Date().toLocaleTimeString([], { hour12: false });
    const k = document.createElement("b");
    k.textContent = kind;
    const s = document.createElement("span");
    s.textContent = text;
    li.append(t, k, s);
    const list = $("log");
    list.prepend(li);
    while (list.children.length > LOG_LINES) list.lastChild.remove();
  }

  const short = (frame) => {
    const s = JSON.stringify(frame);
    return s.length > 140 ? s.slice(0, 137) + "…" : s;
  };

  // ---- wiring ----------------------------------------------------------

  function chips(containerID, values, onPick) {
    const box = $(containerID);
    for (const v of values) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.dataset.value = v;
      b.textContent = v;
      b.addEventListener("click", () => onPick(v));
      box.append(b);
    }
  }

  socket.on("state", (s) => {
    const label = s === "open" ? "live" : s;
    $("socket-state").textContent = label;
    $("socket-dot").className = "dot " + s;
    document.body.dataset.socket = s;
    if (s !== "open") log("socket", s);
  });
  socket.on("close", (ev) => {
    log("socket", "closed " + (ev.code || "") + (ev.reason ? " " + ev.reason : ""));
    // A token is checked when a socket opens: an expired one would be refused
    // on every reconnect, so fetch a fresh one first.
    if (state.user && state.expiresAt && Date.now() > state.expiresAt - 60000) signIn(state.user);
  });
  socket.on("in", (f) => { if (f[3] !== "phx_reply" || f[2] !== "phoenix") log("in", short(f)); });
  socket.on("out", (f) => { if (f[3] !== "heartbeat") log("out", short(f)); });

  $("topic-form").addEventListener("submit", (ev) => { ev.preventDefault(); watch($("topic-input").value); });
  $("signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("signin-input").value); });
  $("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => { const t = topicFromHash(); if (t) watch(t); });

  chips("topic-chips", TOPICS, watch);
  chips("user-chips", USERS, signIn);
  showIdentity();
  socket.connect();
  watch(topicFromHash() || TOPICS[0]);
  probeDemoTokens();
  pollMembers();
  setInterval(pollMembers, MEMBERS_EVERY_MS);
  observe("*");
  pollBusiest();
  setInterval(pollBusiest, BUSIEST_EVERY_MS);
  setInterval(sample, 1000);
  window.addEventListener("resize", drawHistory);
})();
