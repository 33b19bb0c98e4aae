// One render function per panel id (see online/dashboard/panels.py). Each takes the panel's
// JSON and the page context and returns the panel body. Numbers carry data-field (a stable
// name) and data-value (the JSON value) so a test can read them back.
(() => {
  "use strict";
  const { lineChart, histogram } = window.VeloxCharts;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value) && digits === undefined) return value.toLocaleString("en-US");
    return value.toFixed(digits === undefined ? 3 : digits);
  }

  function num(field, value, unit, digits) {
    const shown = fmt(value, digits) + (unit && value !== null && value !== undefined ? ` ${unit}` : "");
    return el("span", { class: "num", "data-field": field, "data-value": JSON.stringify(value) }, shown);
  }

  function clock(field, epoch) {
    const text = epoch === null ? "—" : new Date(epoch * 1000).toLocaleTimeString();
    return el("span", { class: "num", "data-field": field, "data-value": JSON.stringify(epoch) }, text);
  }

  function kv(pairs) {
    const dl = el("dl", { class: "kv" });
    for (const [label, node] of pairs) dl.append(el("dt", {}, label), el("dd", {}, node));
    return dl;
  }

  function table(headers, rows, field) {
    const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
    const body = rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))));
    return el("table", { "data-table": field }, el("thead", {}, head), el("tbody", {}, ...body));
  }

  function empty(text) {
    return el("p", { class: "empty" }, text);
  }

  function metricsText(metrics) {
    const names = Object.keys(metrics).sort();
    return names.length ? names.map((n) => `${n} ${fmt(metrics[n], 4)}`).join(", ") : "—";
  }

  function overview(data, ctx) {
    const model = data.models.find((m) => m.model === ctx.model);
    if (!model) return empty("No model is served yet: publish a snapshot (velox train).");
    const training = Object.keys(model.metrics).sort().map((name) => [name, num(`overview.metrics.${name}`, model.metrics[name], "", 4)]);
    const facts = kv([
      ["model", num("overview.model", model.model)],
      ["version", num("overview.version", model.version)],
      ["kind", num("overview.kind", model.kind)],
      ["dimension", num("overview.dim", model.dim)],
      ["catalog", num("overview.items", model.items, "items")],
      ["policy", num("overview.policy", model.policy)],
      ["λ / noise σ", el("span", {}, num("overview.lam", model.lam, "", 3), " / ", num("overview.noise_std", model.noise_std, "", 3))],
      ["published", num("overview.created_at", model.created_at)],
      ["CURRENT history", num("overview.history", model.pointer ? model.pointer.history.join(" → ") || "none" : null)],
      ...training,
    ]);
    const versions = table(["version", "published", "status", "kind", "metrics"],
      model.versions.map((v) => [num(`overview.versions.${v.version}`, v.version), v.created_at, v.status, v.kind, metricsText(v.metrics)]),
      "versions");
    const counts = Object.entries(model.cycle_counts).map(([k, v]) => `${k} ${v}`).join(", ");
    const cycles = model.cycles.length
      ? table(["started", "trigger", "outcome", "seconds", "version", "drained", "detail"],
        model.cycles.map((c) => [c.started_at, c.trigger, el("span", { class: `outcome ${c.outcome}` }, c.outcome),
          fmt(c.seconds, 1), fmt(c.version), fmt(c.drained), c.detail]), "cycles")
      : empty("No retrain cycles recorded yet (velox retrain, velox scheduler).");
    return el("div", { class: "columns" },
      el("div", {}, el("h3", {}, "Served model"), facts),
      el("div", {}, el("h3", {}, "Versions"), versions,
        el("h3", {}, "Retrain cycles ", el("small", { "data-field": "overview.cycle_counts" }, counts)), cycles));
  }

  function traffic(data) {
    const rows = data.routes.map((r) => [r.route,
      num(`traffic.${r.route}.requests_per_s`, r.requests_per_s, "/s", 1),
      num(`traffic.${r.route}.p50_ms`, r.p50_ms, "ms", 2),
      num(`traffic.${r.route}.p95_ms`, r.p95_ms, "ms", 2),
      num(`traffic.${r.route}.p99_ms`, r.p99_ms, "ms", 2)]);
    const errors = data.errors.length
      ? table(["status", "since start", "per second"], data.errors.map((e) => [e.status,
        num(`traffic.errors.${e.status}.total`, e.total), num(`traffic.errors.${e.status}.per_s`, e.per_s, "/s", 2)]), "errors")
      : empty("No errors.");
    const head = kv([
      ["worker (pid)", num("traffic.worker_pid", data.worker_pid, "", 0)],
      ["sampled at", clock("traffic.tick", data.t.length ? data.t[data.t.length - 1] : null)],
      ["window", num("traffic.window_s", data.window_s, "s", 1)],
      ["Redis round trip", num("traffic.redis_rtt_ms", data.redis_rtt_ms, "ms", 3)],
      ["predictions (all workers)", num("traffic.predictions_total", data.predictions_total)],
      ["observations (all workers)", num("traffic.observations_total", data.observations_total)],
    ]);
    const rate = lineChart({ t: data.t, title: "Requests per second", yLabel: "requests / s", yMin: 0,
      series: data.series.map((s) => ({ name: s.route, values: s.requests_per_s })) });
    const latency = lineChart({ t: data.t, title: "Latency", yLabel: "ms", yMin: 0,
      series: data.series.flatMap((s) => [{ name: `${s.route} p50`, values: s.p50_ms }, { name: `${s.route} p99`, values: s.p99_ms }]) });
    const redis = lineChart({ t: data.t, title: "Redis round trip (PING)", yLabel: "ms", yMin: 0,
      series: [{ name: "round trip", values: data.redis_rtt_series_ms }] });
    const failures = lineChart({ t: data.t, title: "Errors", yLabel: "errors / s", yMin: 0,
      series: [{ name: "all statuses", values: data.errors_per_s }] });
    return el("div", {},
      el("div", { class: "columns" }, el("div", {}, head),
        el("div", {}, table(["route", "requests", "p50", "p95", "p99"], rows, "routes"), errors)),
      el("div", { class: "charts" }, rate, latency, redis, failures));
  }

  function learning(data) {
    const users = data.users_with_state;
    const head = kv([
      ["events in sample", num("learning.events", data.events)],
      ["decisions in sample", num("learning.decisions", data.decisions)],
      ["sample since", clock("learning.since", data.since)],
      ["mean reward", num("learning.reward_mean", data.reward_mean, "", 4)],
      ["explored slots", el("span", {}, num("learning.explored_share", data.explored_share === null ? null : data.explored_share * 100, "%", 1),
        ` (${fmt(data.explored_slots)} of ${fmt(data.slots)}, propensity < ${data.explore_threshold})`)],
      [`users with state (v${users.version})`, num("learning.users_with_state", users.count)],
      ["logging policies", num("learning.policies", Object.entries(data.policies).map(([k, v]) => `${k} ${v}`).join(", ") || null)],
    ]);
    const rewards = lineChart({ t: data.rewards.t, title: `Reward, moving average of ${data.rewards.window} events`,
      yLabel: "reward", series: [{ name: "reward (moving avg)", values: data.rewards.moving_average }], now: Date.now() / 1000 });
    const props = histogram({ edges: data.propensities.edges, counts: data.propensities.counts,
      title: "Logged propensities", xLabel: "propensity of the shown item", yLabel: "slots" });
    const note = data.events === 0 && data.decisions === 0 ? empty("No data yet: no /predict or /observe logged for this model.") : null;
    return el("div", {}, note, head, el("div", { class: "charts" }, rewards, props));
  }

  function ope(results) {
    const rows = [];
    for (const r of results) {
      const p = `ope.${r.policy}`;
      const ran = clock(`${p}.computed_at`, r.computed_at);
      if (!r.estimates.length) {
        rows.push([r.policy, num(`${p}.rows`, r.rows), "—", num(`${p}.note`, r.note), "", "", ran]);
        continue;
      }
      r.estimates.forEach((e, index) => {
        const f = `${p}.${e.estimator}`;
        const first = index === 0;
        rows.push([first ? r.policy : "", first ? num(`${p}.rows`, r.rows) : "", e.estimator.toUpperCase(),
          num(`${f}.value`, e.value, "", 4),
          el("span", {}, "[", num(`${f}.ci_low`, e.ci_low, "", 4), ", ", num(`${f}.ci_high`, e.ci_high, "", 4), "]"),
          num(`${f}.ess`, e.ess, "", 1), first ? ran : ""]);
      });
    }
    const first = results[0];
    const head = first ? kv([["logged mean reward", num("ope.logged_mean_reward", first.logged_mean_reward, "", 4)],
      ["logged by", first.rows ? Object.entries(first.logged_policies).map(([k, v]) => `${k} ${v}`).join(", ") : "—"]]) : null;
    const note = first && !first.rows ? empty(`No data yet: ${first.note}`) : null;
    const how = el("p", { class: "hint" }, "Rows: the recent rewarded slots each estimate uses (fewer on large catalogs). " +
      "Each target acts from the served snapshot's priors (a stationary policy, as velox evaluate-policy does), so the " +
      "served policy's own row differs from the logged mean once users have learned online. ESS: how many logged slots " +
      "an estimate effectively rests on.");
    return el("div", {}, note, head, how,
      table(["policy", "rows", "estimator", "value", "95% interval", "ESS", "computed"], rows, "ope"));
  }

  function extensions(data) {
    return el("div", { class: "columns" }, ...data.panels.map((p) => el("div", { "data-extension": p.id },
      el("h3", {}, p.title),
      p.available
        ? kv(p.metrics.map((m) => [m.label, num(`extensions.${p.id}.${m.label}`, m.value, m.unit)]))
        : el("p", { class: "empty", "data-field": `extensions.${p.id}.reason` }, `Not available: ${p.reason}`))));
  }

  window.VeloxPanels = { overview, traffic, learning, ope, extensions, empty, el };
})();
