// Phoenix's page: the runs, one run's DAG with live step states, its health and analysis,
// and the approvals it waits for. Plain DOM, no framework, nothing fetched but the API.
// Every text that comes from the server goes in through textContent or an attribute,
// never as HTML. One file, in sections, with the drills' parts in drills.js (the server
// compiles in exactly these four assets: src/serve/api.rs); it needs no build step.
"use strict";

(() => {
  const TOKEN_KEY = "phoenix.token";
  // A run in one of these states is not polled any more (a resume from the page polls again;
  // the runs list notices a change made elsewhere).
  const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
  const SYMBOL = {
    pending: "○", running: "▶", waiting: "‖", succeeded: "✓", failed: "✗",
    skipped: "↷", upstream_failed: "⤓", cancelled: "⊘", halted: "■", interrupted: "■",
  };
  const ANALYZERS = new Set(["llm", "incident.analyze"]);
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    needToken: false,
    runId: null, // the selected run
    run: null, // its latest JSON
    runTimer: null,
    runSeq: 0, // answers to an older request for the run are dropped
    runbooks: [],
    log: { lines: 0, events: 0, shown: 0 }, // the selected run's output seen so far
  };
  const LOG_KEEP = 5000; // lines kept on the page; older ones are dropped (the API has them all)
  const waitingCards = new Map(); // step → its decision card (kept across polls: typed comments stay)
  const runRows = new Map(); // run id → its row in the runs list

  // ---------------------------------------------------------------- small helpers

  const $ = (id) => document.getElementById(id);

  /** An element; `text` sets textContent, `on…` adds listeners, other keys are attributes. */
  function el(tag, props = {}, ...kids) {
    const e = document.createElement(tag);
    setProps(e, props);
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  /** An SVG element, the same way. */
  function svg(tag, props = {}, ...kids) {
    const e = document.createElementNS(SVG_NS, tag);
    setProps(e, props);
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  function setProps(e, props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = String(v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function badge(status) {
    const s = String(status || "unknown");
    return el("span", { class: `badge status-${s}`, "data-status": s, text: s });
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} m`;
  }

  /** How long something took, or has taken so far. */
  function elapsed(started, finished, given) {
    if (given !== null && given !== undefined) return given;
    if (!started) return null;
    const end = finished ? Date.parse(finished) : Date.now();
    return end - Date.parse(started);
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const pad = (n) => String(n).padStart(2, "0");
    const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const today = new Date().toDateString() === d.toDateString();
    return today ? clock : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
  }

  function timeEl(iso) {
    return iso ? el("time", { datetime: iso, title: iso, text: fmtTime(iso) }) : document.createTextNode("–");
  }

  function runLink(id) {
    return el("a", { href: `#run=${encodeURIComponent(id)}`, "data-run-link": id, text: id });
  }

  /** What drills.js draws with. */
  const helpers = { el, badge, timeEl, runLink };

  function plain(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  // ---------------------------------------------------------------- the fragment and the token

  /** `#token=…&run=…` as a map (values percent-decoded; `+` stays a plus). */
  function fragment() {
    const map = new Map();
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      const [k, v] = i < 0 ? [part, ""] : [part.slice(0, i), part.slice(i + 1)];
      try {
        map.set(decodeURIComponent(k), decodeURIComponent(v));
      } catch {
        map.set(k, v);
      }
    }
    return map;
  }

  /** Takes a token from the fragment (and out of the address bar); the run it names. */
  function readFragment() {
    const frag = fragment();
    if (frag.has("token")) {
      setToken(frag.get("token"));
      frag.delete("token");
      const rest = [...frag].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
      history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    }
    return frag.get("run") || null;
  }

  function setToken(token) {
    state.token = token.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token-forget").hidden = !state.token;
  }

  function askToken(message) {
    state.needToken = true;
    $("token-message").textContent = state.token
      ? `The token was refused: ${message || "401 Unauthorized"}. Give another one.`
      : "This server wants a bearer token (docs/serve.md, “Authentication”).";
    const form = $("token-form");
    if (form.hidden) {
      form.hidden = false;
      $("token-input").focus();
    }
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      setConnection(`The server does not answer (${e.message}); trying again.`);
      throw new ApiError(0, "the server does not answer");
    }
    setConnection("");
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    const message = (data && data.error) || `${res.status} ${res.statusText}`.trim();
    if (res.status === 401) {
      askToken(message);
      throw new ApiError(401, message, data);
    }
    if (!res.ok) throw new ApiError(res.status, message, data);
    return data;
  }

  function setConnection(text) {
    $("connection").textContent = text;
  }

  // ---------------------------------------------------------------- the runs list

  async function loadRuns() {
    if (state.needToken) return;
    let data;
    try {
      data = await api("GET", "/api/v1/runs");
    } catch (e) {
      if (e.status !== 401 && e.status !== 0) showRunsError(e.message);
      return;
    }
    showRunsError("");
    const runs = (data.runs || []).slice().sort((a, b) => String(b.started_at).localeCompare(String(a.started_at)));
    renderRuns(runs);
    // The selected run changed elsewhere (resumed from a terminal): follow it again.
    const mine = runs.find((r) => r.id === state.runId);
    if (mine && state.run && state.runTimer === null && mine.status !== state.run.status) pollRun();
  }

  function showRunsError(text) {
    $("runs-error").textContent = text;
    $("runs-error").hidden = !text;
  }

  function renderRuns(runs) {
    const body = $("runs-body");
    const seen = new Set();
    runs.forEach((r, i) => {
      seen.add(r.id);
      let row = runRows.get(r.id);
      if (!row) {
        row = el("tr", { "data-run": r.id, onclick: (ev) => {
          if (ev.target.closest("a")) return; // the link itself changes the fragment
          location.hash = `run=${encodeURIComponent(r.id)}`;
        } });
        runRows.set(r.id, row);
      }
      const parent = r.parent ? el("span", { class: "runbook" }, "child of ", runLink(r.parent.run)) : null;
      const drill = r.drill === true ? window.PhoenixDrills.badge(helpers) : null;
      row.replaceChildren(
        el("td", {}, el("a", { class: "run-id", href: `#run=${encodeURIComponent(r.id)}`, text: r.id }), drill, el("span", { class: "runbook", text: r.runbook }), parent),
        el("td", {}, badge(r.status)),
        el("td", { class: "when" }, timeEl(r.started_at), el("span", { class: "took", text: fmtDuration(r.finished_at ? r.duration_ms : elapsed(r.started_at, null)) })),
      );
      row.setAttribute("aria-selected", String(r.id === state.runId));
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    for (const [id, row] of runRows) {
      if (!seen.has(id)) {
        row.remove();
        runRows.delete(id);
      }
    }
    $("runs-empty").hidden = runs.length > 0;
    const drills = window.PhoenixDrills.rows(helpers, runs);
    $("drills-body").replaceChildren(...drills);
    $("drills").hidden = drills.length === 0;
  }

  function markSelected() {
    for (const [id, row] of runRows) row.setAttribute("aria-selected", String(id === state.runId));
  }

  // ---------------------------------------------------------------- the cluster

  /** Who leads, in the header; a banner when this node follows, or does not act at all. */
  async function loadCluster() {
    if (state.needToken) return;
    let c;
    try {
      c = await api("GET", "/api/v1/cluster");
    } catch {
      return;
    }
    const leader = c.current ? c.current.node : null;
    $("cluster-leader").textContent = leader ? `leader: ${leader}${c.leader ? " (this node)" : ""}` : "no leader now";
    $("cluster-leader").hidden = false;
    const banner = $("cluster-banner");
    banner.classList.toggle("paused", Boolean(c.paused));
    if (c.paused) banner.textContent = `Not acting: ${c.paused}`;
    else if (!c.leader && leader) banner.textContent = `This node (${c.node}) is a follower of ${leader}; writes go to it.`;
    else if (!c.leader) banner.textContent = `This node (${c.node}) follows, and no node leads now: writes are refused until one does.`;
    else banner.textContent = "";
    banner.hidden = !banner.textContent;
  }

  // ---------------------------------------------------------------- starting a run

  async function loadRunbooks() {
    if (state.needToken) return;
    let data;
    try {
      data = await api("GET", "/api/v1/runbooks");
    } catch (e) {
      if (e.status !== 401) $("start-message").textContent = e.message;
      return;
    }
    state.runbooks = data.runbooks || [];
    const select = $("start-runbook");
    const chosen = select.value;
    select.replaceChildren(
      ...state.runbooks.map((rb) =>
        rb.name
          ? el("option", { value: rb.name, text: `${rb.name} (${rb.file})` })
          : el("option", { value: "", disabled: true, text: `${rb.file}: does not validate` }),
      ),
    );
    if (chosen) select.value = chosen;
    renderParams();
  }

  function renderParams() {
    const rb = state.runbooks.find((r) => r.name && r.name === $("start-runbook").value);
    const box = $("start-params");
    $("start-description").textContent = rb && rb.description ? rb.description : "";
    const fields = Object.entries((rb && rb.params) || {}).map(([name, p], i) => paramField(name, p, i));
    box.replaceChildren(el("legend", { text: "Params" }), ...fields);
    box.disabled = fields.length === 0;
    $("start-submit").disabled = !rb;
  }

  function paramField(name, p, i) {
    const id = `param-${i}`;
    const def = p.default === null || p.default === undefined ? "" : plain(p.default);
    let input;
    if (Array.isArray(p.enum) && p.enum.length) {
      input = el("select", { id, "data-param": name }, p.enum.map((v) => el("option", { value: plain(v), text: plain(v) })));
      if (def) input.value = def;
    } else if (p.type === "bool") {
      input = el("select", { id, "data-param": name }, ["true", "false"].map((v) => el("option", { value: v, text: v })));
      input.value = def || "false";
    } else {
      const type = p.type === "int" || p.type === "float" ? "number" : "text";
      input = el("input", { id, type, "data-param": name, value: def, required: p.required, step: p.type === "float" ? "any" : null });
    }
    const what = [p.type || "string", p.required ? "required" : null].filter(Boolean).join(", ");
    return el(
      "div",
      { class: "param" },
      el("label", { for: id }, el("code", { text: name }), " ", el("span", { class: "muted", text: `(${what})` })),
      input,
      p.description ? el("p", { class: "hint", text: p.description }) : null,
    );
  }

  async function startRun(ev) {
    ev.preventDefault();
    const runbook = $("start-runbook").value;
    const params = {};
    for (const input of $("start-params").querySelectorAll("[data-param]")) {
      if (input.value !== "") params[input.dataset.param] = input.value;
    }
    const msg = $("start-message");
    msg.className = "";
    msg.textContent = "Starting…";
    $("start-submit").disabled = true;
    try {
      const r = await api("POST", "/api/v1/runs", { runbook, params });
      msg.replaceChildren("Started ", runLink(r.id), ".");
      location.hash = `run=${encodeURIComponent(r.id)}`;
      loadRuns();
    } catch (e) {
      msg.className = "error";
      msg.replaceChildren(e.message);
      if (e.body && e.body.holder) msg.append(" ", runLink(e.body.holder));
    } finally {
      $("start-submit").disabled = false;
    }
  }

  // ---------------------------------------------------------------- one run

  function select(id) {
    if (id === state.runId) return;
    state.runId = id;
    state.run = null;
    clearTimeout(state.runTimer);
    state.runTimer = null;
    waitingCards.clear();
    $("waiting-list").replaceChildren();
    resetLog();
    $("run-action-message").textContent = "";
    markSelected();
    $("run-none").textContent = id ? `Loading run ${id}…` : "Pick a run on the left, or open #run=ID.";
    $("run-none").hidden = false;
    $("run-detail").hidden = true;
    if (id) pollRun();
  }

  async function pollRun() {
    clearTimeout(state.runTimer);
    state.runTimer = null;
    const id = state.runId;
    if (!id || state.needToken) return;
    const seq = ++state.runSeq;
    let run;
    try {
      run = await api("GET", `/api/v1/runs/${encodeURIComponent(id)}`);
    } catch (e) {
      if (seq !== state.runSeq || id !== state.runId || e.status === 401) return;
      if (e.status === 404) {
        $("run-none").textContent = e.message;
        $("run-none").hidden = false;
        $("run-detail").hidden = true;
        return;
      }
      state.runTimer = setTimeout(pollRun, 2000);
      return;
    }
    if (seq !== state.runSeq || id !== state.runId) return;
    const changed = !state.run || state.run.status !== run.status;
    state.run = run;
    if (changed && runRows.has(id)) loadRuns();
    renderRun(run);
    // After the run's state: the output asked now holds everything up to that state.
    await pollLog(id, seq);
    if (seq !== state.runSeq || id !== state.runId) return;
    if (!FINISHED.has(run.status)) state.runTimer = setTimeout(pollRun, run.status === "running" ? 1000 : 3000);
  }

  // ---------------------------------------------------------------- the output

  function resetLog() {
    state.log = { lines: 0, events: 0, shown: 0 };
    $("log").replaceChildren();
    $("log").hidden = true;
    $("log-empty").hidden = false;
    $("log-dropped").hidden = true;
  }

  /** Appends the output lines not seen yet (the API sends only those from line number `from_line` on). */
  async function pollLog(id, seq) {
    let got;
    try {
      const q = `from_line=${state.log.lines}&from_event=${state.log.events}`;
      got = await api("GET", `/api/v1/runs/${encodeURIComponent(id)}/logs?${q}`);
    } catch (e) {
      return; // the next poll asks again
    }
    if (seq !== state.runSeq || id !== state.runId) return;
    const lines = got.lines || [];
    if (lines.length) state.log.lines = lines[lines.length - 1].seq + 1;
    state.log.events += (got.events || []).length;
    if (!lines.length) return;
    const pre = $("log");
    const following = pre.hidden || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    for (const l of lines) {
      const row = el("span", { class: l.stream === "stderr" ? "line stderr" : "line", "data-step": l.step || "" },
        el("span", { class: "at", text: `${fmtTime(l.at)} ` }),
        el("span", { class: "step", text: `[${l.step || "run"}] ` }),
        l.text || "", "\n");
      pre.append(row);
    }
    state.log.shown += lines.length;
    while (pre.childElementCount > LOG_KEEP) pre.firstElementChild.remove();
    const dropped = state.log.shown - pre.childElementCount;
    $("log-dropped").hidden = dropped <= 0;
    $("log-dropped").textContent = `${dropped} older lines are not shown here: phoenix logs ${id} has what the store keeps.`;
    pre.hidden = false;
    $("log-empty").hidden = true;
    if (following) pre.scrollTop = pre.scrollHeight;
  }

  function renderRun(run) {
    $("run-none").hidden = true;
    $("run-detail").hidden = false;
    $("run-id").textContent = run.id;
    const status = $("run-status");
    status.className = `badge status-${run.status}`;
    status.dataset.status = run.status;
    status.textContent = run.status;
    $("run-drill").hidden = run.drill !== true;
    window.PhoenixDrills.section(helpers, $("drill"), run);
    const live = $("run-live");
    live.className = FINISHED.has(run.status) ? "live" : "live on";
    live.textContent = FINISHED.has(run.status) ? "finished" : run.status === "running" ? "live: updates every second" : "updates every few seconds";
    $("run-runbook").textContent = run.runbook;
    $("run-attempt").textContent = run.attempt;
    $("run-started").replaceChildren(timeEl(run.started_at));
    $("run-finished").replaceChildren(timeEl(run.finished_at));
    $("run-duration").textContent = fmtDuration(elapsed(run.started_at, run.finished_at));
    const parent = Array.isArray(run.parent) ? { run: run.parent[0], step: run.parent[1] } : run.parent;
    $("run-parent-box").hidden = !parent;
    if (parent) $("run-parent").replaceChildren(runLink(parent.run), ` (step ${parent.step})`);
    const err = run.error || (run.process_gone ? "the process that ran it is gone (a crash): resume it" : "");
    $("run-error").textContent = err;
    $("run-error").hidden = !err;
    const driven = run.in_progress === true;
    $("run-cancel").hidden = !((run.status === "running" && driven) || run.status === "halted");
    $("run-resume").hidden = driven || !(run.status === "halted" || run.status === "failed" || (run.status === "running" && run.process_gone));

    const records = new Map((run.steps || []).map((s) => [s.id, s]));
    const graph = graphOf(run, records);
    renderWaiting(run.waiting || []);
    renderDag(graph, records, run);
    renderAnalysis(graph, records);
    renderHealth(graph, records);
    renderSteps(run.steps || [], graph);
  }

  /** The steps to draw: the runbook's graph, or (without one) the recorded steps, unlinked. */
  function graphOf(run, records) {
    if (run.graph && Array.isArray(run.graph.steps)) return run.graph.steps;
    return [...records.values()]
      .filter((s) => !/\[\d+\]$/.test(s.id))
      .map((s) => ({ id: s.id, uses: "", plan: s.plan || "main", role: "action", needs: [] }));
  }

  /** A step's record; a `for_each` step without one of its own is summed up from its items. */
  function recordOf(id, records) {
    if (records.has(id)) return records.get(id);
    const items = [...records.values()].filter((s) => s.id.startsWith(`${id}[`));
    if (!items.length) return { id, status: "pending", attempts: 0 };
    const order = ["failed", "upstream_failed", "waiting", "running", "cancelled", "pending", "succeeded", "skipped"];
    const status = order.find((st) => items.some((s) => s.status === st)) || "pending";
    return { id, status, attempts: Math.max(...items.map((s) => s.attempts || 0)), error: (items.find((s) => s.error) || {}).error };
  }

  // ---------------------------------------------------------------- approvals

  function renderWaiting(list) {
    const box = $("waiting-list");
    const now = new Set(list.map((w) => w.step));
    for (const [step, card] of waitingCards) {
      if (!now.has(step)) {
        card.root.remove();
        waitingCards.delete(step);
      }
    }
    list.forEach((w, i) => {
      let card = waitingCards.get(w.step);
      if (!card) {
        card = decisionCard(w.step, waitingCards.size + i);
        waitingCards.set(w.step, card);
        box.append(card.root);
      }
      card.question.textContent = w.message || `May step ${w.step} go ahead?`;
      const who = Array.isArray(w.approvers) && w.approvers.length ? w.approvers.map(plain).join(", ") : "any token with the approve right";
      card.who.textContent = `Who may decide: ${who}.`;
      card.votes.textContent = votesText(w);
      card.votes.hidden = card.votes.textContent === "";
    });
    $("waiting").hidden = waitingCards.size === 0;
  }

  /** The votes so far on a gate (who, how, when, through what) and how many more it needs. */
  function votesText(w) {
    const cast = Array.isArray(w.votes) ? w.votes : [];
    const quorum = Number(w.quorum) || 1;
    if (cast.length === 0 && quorum <= 1) return "";
    const each = cast.map((v) => `${plain(v.by)} ${v.approved ? "approved" : "rejected"} at ${plain(v.at)}${v.via ? ` via ${plain(v.via)}` : ""}`);
    const so = each.length ? `Votes so far: ${each.join("; ")}.` : "No votes yet.";
    const needed = Number(w.needed) || 0;
    return `${so} ${needed} more approval${needed === 1 ? "" : "s"} needed (quorum ${quorum}).`;
  }

  function decisionCard(step, n) {
    const commentId = `comment-${n}-${Date.now()}`;
    const question = el("p", { class: "question" });
    const who = el("p", { class: "muted" });
    const votes = el("p", { class: "votes", "data-votes": step });
    const comment = el("textarea", { id: commentId, rows: 2, "data-comment": step, placeholder: "why (recorded with the decision)" });
    const message = el("p", { class: "error", role: "alert", "data-decision-error": step });
    const approve = el("button", { type: "button", class: "approve", "data-approve": step, text: "Approve" });
    const reject = el("button", { type: "button", class: "reject", "data-reject": step, text: "Reject" });
    const root = el(
      "div",
      { class: "decision", "data-waiting": step },
      el("h4", {}, "Step ", el("code", { text: step })),
      question,
      who,
      votes,
      el("label", { for: commentId, text: "Comment" }),
      comment,
      el("div", { class: "buttons" }, approve, reject),
      message,
    );
    const decide = async (verdict) => {
      approve.disabled = reject.disabled = true;
      message.className = "muted";
      message.textContent = verdict === "approve" ? "Approving…" : "Rejecting…";
      const path = `/api/v1/runs/${encodeURIComponent(state.runId)}/steps/${encodeURIComponent(step)}/${verdict}`;
      const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
      try {
        const r = await api("POST", path, body);
        message.textContent = r && r.applied === false ? r.message || "Recorded: it applies when the run resumes." : verdict === "approve" ? "Approved." : "Rejected.";
      } catch (e) {
        message.className = "error";
        message.textContent = `Refused (${e.status || "no answer"}): ${e.message}`;
      } finally {
        approve.disabled = reject.disabled = false;
      }
      pollRun();
    };
    approve.addEventListener("click", () => decide("approve"));
    reject.addEventListener("click", () => decide("reject"));
    return { root, question, who, votes };
  }

  async function runAction(action) {
    const msg = $("run-action-message");
    msg.textContent = "";
    try {
      await api("POST", `/api/v1/runs/${encodeURIComponent(state.runId)}/${action}`, {});
    } catch (e) {
      msg.textContent = e.message;
    }
    pollRun();
    loadRuns();
  }

  /** Downloads the post-incident report (the request needs the token, so not a plain link). */
  async function downloadReport(format) {
    const msg = $("run-action-message");
    msg.textContent = "";
    const id = state.runId;
    const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
    try {
      const res = await fetch(`/api/v1/runs/${encodeURIComponent(id)}/report?format=${format}`, { headers, cache: "no-store" });
      if (!res.ok) {
        let message = `${res.status} ${res.statusText}`;
        try {
          message = (await res.json()).error || message;
        } catch {
          // not JSON: the status says it
        }
        if (res.status === 401) askToken(message);
        msg.textContent = message;
        return;
      }
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: `phoenix-report-${id}.${format}`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      msg.textContent = e.message;
    }
  }

  // ---------------------------------------------------------------- the DAG

  const BOX = { w: 178, h: 64, gapX: 44, gapY: 16, pad: 16, lane: 26 };

  /** Columns per plan: a step's column is the longest path to it from a root, via `needs`. */
  function layout(steps) {
    const lanes = [];
    for (const plan of ["main", "on_failure"]) {
      const mine = steps.filter((s) => (s.plan || "main") === plan);
      if (!mine.length) continue;
      const byId = new Map(mine.map((s) => [s.id, s]));
      const depth = new Map();
      const depthOf = (s, path) => {
        if (depth.has(s.id)) return depth.get(s.id);
        if (path.has(s.id)) return 0; // a cycle does not validate; never loop on one
        path.add(s.id);
        const needs = (s.needs || []).filter((n) => byId.has(n));
        const d = needs.length ? 1 + Math.max(...needs.map((n) => depthOf(byId.get(n), path))) : 0;
        path.delete(s.id);
        depth.set(s.id, d);
        return d;
      };
      const columns = [];
      mine.forEach((s) => {
        const d = depthOf(s, new Set());
        (columns[d] = columns[d] || []).push(s);
      });
      // One sweep of barycentres: each column in the mean order of what it needs.
      const row = new Map();
      columns.forEach((col, c) => {
        if (c > 0) {
          const key = (s) => {
            const ns = (s.needs || []).filter((n) => row.has(n));
            return ns.length ? ns.reduce((a, n) => a + row.get(n), 0) / ns.length : Infinity;
          };
          col.sort((a, b) => key(a) - key(b));
        }
        col.forEach((s, r) => row.set(s.id, r));
      });
      lanes.push({ plan, columns, rows: Math.max(...columns.map((c) => c.length)) });
    }
    return lanes;
  }

  function renderDag(steps, records, run) {
    const lanes = layout(steps);
    const labelled = lanes.length > 1 || (lanes[0] && lanes[0].plan !== "main");
    const pos = new Map();
    let top = BOX.pad;
    let width = 0;
    const parts = [];
    for (const lane of lanes) {
      if (labelled) {
        if (top > BOX.pad) parts.push(svg("line", { class: "lane-line", x1: 0, x2: "100%", y1: top - BOX.gapY / 2, y2: top - BOX.gapY / 2 }));
        parts.push(svg("text", { class: "lane-label", x: BOX.pad, y: top + 12, text: lane.plan === "main" ? "main" : "on failure" }));
        top += BOX.lane;
      }
      lane.columns.forEach((col, c) =>
        col.forEach((s, r) => pos.set(`${lane.plan}/${s.id}`, { x: BOX.pad + c * (BOX.w + BOX.gapX), y: top + r * (BOX.h + BOX.gapY) })),
      );
      width = Math.max(width, BOX.pad * 2 + lane.columns.length * (BOX.w + BOX.gapX) - BOX.gapX);
      top += lane.rows * (BOX.h + BOX.gapY) + BOX.gapY;
    }
    const height = top;
    const edges = svg("g", { class: "edges" });
    const nodes = svg("g", { class: "nodes" });
    for (const s of steps) {
      const plan = s.plan || "main";
      const to = pos.get(`${plan}/${s.id}`);
      for (const need of s.needs || []) {
        const from = pos.get(`${plan}/${need}`);
        if (!from || !to) continue;
        const [x1, y1, x2, y2] = [from.x + BOX.w, from.y + BOX.h / 2, to.x - 2, to.y + BOX.h / 2];
        const bend = Math.max(20, (x2 - x1) / 2);
        const done = recordOf(need, records).status === "succeeded";
        edges.append(
          svg("path", {
            class: done ? "edge done" : "edge",
            d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
            "marker-end": "url(#arrow)",
            "data-edge": `${need}->${s.id}`,
          }),
        );
      }
      if (to) nodes.append(node(s, recordOf(s.id, records), to));
    }
    const defs = svg(
      "defs",
      {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { class: "arrow", d: "M0,0 L10,5 L0,10 z" })),
    );
    const root = svg(
      "svg",
      // Scaled down to fit, but not below 65%: a wider graph scrolls.
      { width: Math.max(width, 320), height, viewBox: `0 0 ${Math.max(width, 320)} ${height}`, style: `min-width: ${Math.round(width * 0.65)}px`, role: "img", "aria-labelledby": "dag-desc", "data-run": run.id },
      svg("desc", { id: "dag-desc", text: `The steps of run ${run.id} and what each needs; the table below lists the same.` }),
      defs,
      parts,
      edges,
      nodes,
    );
    $("dag").replaceChildren(root);
  }

  function clip(text, n) {
    const t = String(text || "");
    return t.length > n ? `${t.slice(0, n - 1)}…` : t;
  }

  function node(s, rec, at) {
    const status = rec.status || "pending";
    const role = s.role || "action";
    const took = elapsed(rec.started_at, rec.finished_at, rec.duration_ms);
    const meta = [`${SYMBOL[status] || "?"} ${status}`];
    if (took !== null && !["pending", "skipped", "upstream_failed"].includes(status)) meta.push(fmtDuration(took));
    if ((rec.attempts || 0) > 1) meta.push(`${rec.attempts} attempts`);
    const title = [`${s.id} (${s.uses || role}): ${status}`, rec.upstream && !rec.error ? `not run: ${rec.upstream} failed` : null, rec.error ? `error: ${rec.error}` : null, rec.child_run ? `child run ${rec.child_run}` : null]
      .filter(Boolean)
      .join("\n");
    return svg(
      "g",
      {
        class: `node role-${role}`,
        transform: `translate(${at.x},${at.y})`,
        "data-step": s.id,
        "data-status": status,
        "data-role": role,
        "data-plan": s.plan || "main",
        "data-attempts": rec.attempts || 0,
        onclick: () => showStepRow(s.id),
      },
      svg("title", { text: title }),
      svg("rect", { class: "box", width: BOX.w, height: BOX.h, rx: role === "probe" ? 16 : 8 }),
      role !== "action" ? svg("text", { class: "tag", x: BOX.w - 8, y: 14, "text-anchor": "end", text: role }) : null,
      svg("text", { class: "id", x: 10, y: 19, text: clip(s.id, role === "action" ? 22 : 17) }),
      svg("text", { class: "uses", x: 10, y: 35, text: clip(s.uses, 26) }),
      svg("text", { class: "meta", x: 10, y: 54, text: meta.join(" · ") }),
    );
  }

  function showStepRow(id) {
    const row = [...$("steps-body").rows].find((r) => r.dataset.stepRow === id);
    if (!row) return;
    row.scrollIntoView({ block: "center", behavior: "smooth" });
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1500);
  }

  // ---------------------------------------------------------------- steps, health, analysis

  function renderSteps(list, graph) {
    const uses = new Map(graph.map((s) => [s.id, s.uses]));
    $("steps-body").replaceChildren(
      ...list.map((s) => {
        const item = /\[\d+\]$/.test(s.id);
        const detail = el("td", { class: "detail" });
        if (s.error) detail.append(el("span", { class: "error", "data-step-error": s.id, text: s.error }));
        // Not run because a need failed: the error names the failed step; say it if it does not.
        if (s.status === "upstream_failed" && s.upstream && !(s.error || "").includes(`\`${s.upstream}\``)) {
          detail.append(el("span", { class: "muted", "data-upstream": s.id, text: `not run: ${s.upstream} failed` }));
        }
        if (s.approval) {
          const a = s.approval;
          const verdict = a.approved === true ? "approved" : a.approved === false ? "rejected" : "asked";
          const said = `${verdict} by ${a.by || "?"}${a.comment ? `: ${a.comment}` : ""}`;
          // A rejection's error already says it. `decided` adds when, through what, and
          // whether a resume still has to apply it.
          if (!(s.error || "").includes(said)) detail.append(el("span", { "data-approval": s.id, text: s.decided || said }));
        }
        if (s.child_run) detail.append(el("span", {}, "child run ", runLink(s.child_run)));
        if (s.uncertain) detail.append(el("span", { class: "muted", "data-uncertain": s.id, text: `effect uncertain: ${s.uncertain}; resume asks for --retry or --skip` }));
        if (s.skip && s.status === "skipped" && !s.error) detail.append(el("span", { class: "muted", text: `skipped: ${plain(s.skip)}` }));
        const name = uses.get(s.id);
        return el(
          "tr",
          { "data-step-row": s.id, class: item ? "item" : null },
          el("td", {}, el("code", { text: s.id }), name ? el("span", { class: "muted" }, " ", name) : null, s.plan === "on_failure" ? el("span", { class: "muted", text: " (on failure)" }) : null),
          el("td", {}, badge(s.status)),
          el("td", { class: "num", text: s.attempts || 0 }),
          el("td", { class: "num", text: s.status === "pending" ? "–" : fmtDuration(elapsed(s.started_at, s.finished_at, s.duration_ms)) }),
          detail,
        );
      }),
    );
  }

  function renderHealth(graph, records) {
    const score = graph.find((s) => s.role === "score");
    const out = score && records.get(score.id) && records.get(score.id).outputs;
    $("health").hidden = !(out && out.signals);
    if (!out || !out.signals) return;
    const summary = $("health-summary");
    summary.replaceChildren("Level ", el("strong", { "data-health-level": out.level, text: plain(out.level) }), ` with a score of ${plain(out.total)}`);
    if (out.degraded) {
      summary.append(`: the observer is degraded (${plain(out.degraded)}); nothing acts on this evaluation, the last trusted level was ${plain(out.last_level || "none")}`);
    } else if (out.raw_level && out.raw_level !== out.level) {
      summary.append(`; the score alone says ${out.raw_level}, held back by its \`for\` (seen ${out.streak || 1} time(s) in a row)`);
    }
    summary.append(".");
    const rows = Object.entries(out.signals).sort((a, b) => (b[1].weight || 0) - (a[1].weight || 0));
    $("health-body").replaceChildren(
      ...rows.map(([name, sig]) =>
        el(
          "tr",
          { "data-signal": name },
          el("td", {}, el("code", { text: name })),
          el("td", { class: "num", text: plain(sig.weight) }),
          el("td", {}, badge(sig.status)),
          el("td", { class: "error", text: [plain(sig.error), sig.rule_error ? `rule: ${plain(sig.rule_error)}` : ""].filter(Boolean).join("; ") }),
        ),
      ),
    );
    const levels = (out.levels || []).map((l) => `${l.name}${l.max !== null && l.max !== undefined ? ` ≤ ${l.max}` : ""}${l.for > 1 ? ` (for ${l.for})` : ""}`);
    $("health-levels").textContent = levels.length ? `Levels: ${levels.join(" · ")}` : "";
  }

  function renderAnalysis(graph, records) {
    const cards = graph
      .filter((s) => ANALYZERS.has(s.uses))
      .map((s) => [s, records.get(s.id)])
      .filter(([, r]) => r && r.outputs && r.outputs.recommended_action !== undefined)
      .map(([s, r]) => analysisCard(s, r.outputs));
    $("analysis-list").replaceChildren(...cards);
    $("analysis").hidden = cards.length === 0;
  }

  function analysisCard(step, o) {
    const rows = [
      ["Root cause", o.root_cause_category],
      ["Confidence", o.confidence],
      ["Reasoning", o.reasoning],
      ["Evidence", o.evidence],
      ["Source", o.source ? `${o.source}${o.fallback_reason ? ` (${o.fallback_reason})` : ""}` : null],
      ["Model", o.model ? `${o.model}${o.provider ? ` via ${o.provider}` : ""}${o.latency_ms !== undefined ? `, ${o.latency_ms} ms` : ""}` : null],
      ["Rule", o.rule ? `${o.rule} (${o.analyzer || "rules"})` : null],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");
    return el(
      "div",
      { class: "analysis-card", "data-analysis": step.id },
      el("p", { class: "muted" }, el("code", { text: step.id }), ` (${step.uses})`),
      el("p", { class: "action" }, "Recommended: ", el("span", { "data-recommended-action": step.id, text: plain(o.recommended_action) })),
      el("dl", {}, rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: plain(v) })])),
    );
  }

  // ---------------------------------------------------------------- start

  function refresh() {
    loadCluster();
    loadRuns();
    loadRunbooks();
    if (state.runId) pollRun();
  }

  function init() {
    $("token-forget").hidden = !state.token;
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken($("token-input").value);
      $("token-input").value = "";
      $("token-form").hidden = true;
      state.needToken = false;
      refresh();
    });
    $("token-forget").addEventListener("click", () => {
      setToken("");
      askToken();
    });
    $("start-runbook").addEventListener("change", renderParams);
    $("start-form").addEventListener("submit", startRun);
    $("run-cancel").addEventListener("click", () => runAction("cancel"));
    $("run-resume").addEventListener("click", () => runAction("resume"));
    $("run-report-html").addEventListener("click", () => downloadReport("html"));
    $("run-report-md").addEventListener("click", () => downloadReport("md"));
    window.addEventListener("hashchange", () => select(readFragment()));
    const first = readFragment();
    loadCluster();
    loadRuns();
    loadRunbooks();
    select(first);
    setInterval(() => {
      if (!document.hidden) loadRuns();
    }, 2000);
    setInterval(() => {
      if (!document.hidden) loadCluster();
    }, 3000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
