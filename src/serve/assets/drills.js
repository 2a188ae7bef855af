// Phoenix's page, the drills: the DRILL badge, the Drills table (when, runbook, result, RTO,
// RPO, teardown) and a drill run's own section (RTO, RPO, stages, teardown). Everything here
// reads the runs' JSON as the API gives it (`drill`, `measure`, `teardown`: the engine's
// views, the same data as `phoenix drills` and the report's Drill section); app.js calls it
// with its helpers (`h`: el, badge, timeEl, runLink) and inserts text only, never HTML.

"use strict";

window.PhoenixDrills = (() => {
  /** Seconds as the report writes them (`12.3s`), or a dash when not measured. */
  function secs(v) {
    return typeof v === "number" && Number.isFinite(v) ? `${v.toFixed(1)}s` : "–";
  }

  /** The "DRILL" badge put on a drill run wherever it is shown. */
  function badge(h) {
    return h.el("span", { class: "drill-badge", title: "a drill: a rehearsal on the drill's own targets (phoenix drill)", text: "DRILL" });
  }

  /** A drill's teardown: the word, and for a failed one (in red) what to do; `short` for the
   *  Drills table, where the row names the run. */
  function teardown(h, run, short) {
    const t = run.teardown;
    if (t === "failed") {
      const todo = short
        ? ": fix the targets, then phoenix resume the run"
        : `: the drill's targets may be left as the drill made them; fix them, then resume the run (phoenix resume ${run.id})`;
      return h.el("span", { class: "teardown-failed", "data-teardown": "failed" }, h.el("strong", { text: "TEARDOWN FAILED" }), todo);
    }
    return h.el("span", { "data-teardown": t || "none", text: t || "none declared" });
  }

  /** The Drills table's rows: the drills among `runs` (newest first, as given). */
  function rows(h, runs) {
    return runs
      .filter((r) => r.drill === true)
      .map((r) => {
        const m = r.measure || {};
        return h.el(
          "tr",
          { "data-drill": r.id, class: r.teardown === "failed" ? "teardown-failed-row" : null },
          h.el("td", {}, h.el("span", { class: "runbook", "data-runbook": "", text: r.runbook }), h.runLink(r.id), h.el("span", { class: "when" }, h.timeEl(r.started_at))),
          h.el("td", {}, h.badge(r.status)),
          h.el("td", { class: "num" }, h.el("span", { "data-rto": "", text: secs(m.rto_seconds) }), h.el("span", { class: "rpo", "data-rpo": "", text: secs(m.rpo_seconds) })),
          h.el("td", {}, teardown(h, r, true)),
        );
      });
  }

  /** Fills the run page's drill section (`box`) for `run`; hides it for a run that is no drill. */
  function section(h, box, run) {
    box.hidden = run.drill !== true;
    if (box.hidden) return;
    const m = run.measure || {};
    const rto = m.verified_by
      ? `${secs(m.rto_seconds)} (start to the end of \`${m.verified_by}\`, the first passing verification)`
      : "not measured: no read step passed after the last change";
    const pair = (name, key, value) => [h.el("dt", { text: name }), h.el("dd", { "data-measure": key }, value)];
    const facts = h.el(
      "dl",
      { class: "drill-facts" },
      pair("RTO", "rto", rto),
      pair("RPO", "rpo", secs(m.rpo_seconds)),
      pair("Database replay lag", "db_lag", secs(m.db_lag_seconds)),
      pair("Objects not yet copied", "object_lag", secs(m.object_lag_seconds)),
      pair("Teardown", "teardown", teardown(h, run, false)),
    );
    const stages = (m.stages || []).map((s) =>
      h.el("tr", { "data-stage": s.step }, h.el("td", { text: s.step }), h.el("td", { class: "num", text: secs(s.seconds) }), h.el("td", {}, h.badge(s.status))),
    );
    const table = stages.length
      ? h.el(
          "table",
          { class: "grid" },
          h.el("thead", {}, h.el("tr", {}, h.el("th", { scope: "col", text: "Stage" }), h.el("th", { scope: "col", text: "Duration" }), h.el("th", { scope: "col", text: "Status" }))),
          h.el("tbody", {}, stages),
        )
      : null;
    box.querySelector("[data-drill-body]").replaceChildren(facts, table);
  }

  return { badge, rows, section };
})();
