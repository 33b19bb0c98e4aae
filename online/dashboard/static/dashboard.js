// The page: reads the panel list, then refreshes each panel on its own period.
(() => {
  "use strict";
  const ctx = { model: null, panels: [], opePolicies: [] };
  const timers = {};

  async function getJSON(path) {
    const response = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function withModel(path, extra) {
    const query = new URLSearchParams(extra || {});
    if (ctx.model) query.set("model", ctx.model);
    const text = query.toString();
    return text ? `${path}?${text}` : path;
  }

  const loaders = {
    learning: (panel) => getJSON(withModel(panel.data_path)),
    ope: async (panel) => {
      // The served policy first (no `policy` argument), then each candidate not yet shown.
      const results = [await getJSON(withModel(panel.data_path))];
      for (const policy of ctx.opePolicies) {
        if (results.some((r) => r.policy === policy)) continue;
        results.push(await getJSON(withModel(panel.data_path, { policy })));
      }
      return results;
    },
  };

  function stamp(section, ok, text) {
    section.dataset.state = ok ? "ok" : "error";
    section.dataset.loads = String(Number(section.dataset.loads || "0") + 1);
    section.querySelector(".updated").textContent = text;
  }

  function schedule(panel) {
    const section = document.getElementById(`panel-${panel.id}`);
    const body = section.querySelector(".body");
    const run = async () => {
      try {
        const load = loaders[panel.id] || ((p) => getJSON(p.data_path));
        const data = await load(panel);
        body.replaceChildren(window.VeloxPanels[panel.id](data, ctx));
        stamp(section, true, `updated ${new Date().toLocaleTimeString()} · every ${panel.refresh_s} s`);
      } catch (error) {
        body.replaceChildren(window.VeloxPanels.empty(`No data yet: ${error.message}`));
        stamp(section, false, `failed ${new Date().toLocaleTimeString()}, retrying`);
      }
      timers[panel.id] = setTimeout(run, panel.refresh_s * 1000);
    };
    clearTimeout(timers[panel.id]);
    run();
  }

  function layout(panels) {
    const main = document.getElementById("panels");
    const { el } = window.VeloxPanels;
    main.replaceChildren(...panels.map((p) => el("section", { class: `panel panel-${p.id}`, id: `panel-${p.id}` },
      el("header", {}, el("h2", {}, p.title), el("span", { class: "updated" }, "loading…")),
      el("div", { class: "body" }, window.VeloxPanels.empty("Loading…")))));
  }

  async function start() {
    const status = document.getElementById("status");
    let info;
    try {
      info = await getJSON("/dashboard/data/panels");
    } catch (error) {
      status.textContent = `The service does not answer: ${error.message}. Retrying…`;
      setTimeout(start, 5000);
      return;
    }
    ctx.panels = info.panels;
    ctx.opePolicies = info.ope_policies;
    ctx.model = info.default_model || info.models[0] || null;
    const select = document.getElementById("model");
    select.replaceChildren(...info.models.map((m) => window.VeloxPanels.el("option", { value: m }, m)));
    if (ctx.model) select.value = ctx.model;
    select.onchange = () => { ctx.model = select.value; info.panels.forEach(schedule); };
    status.textContent = info.models.length ? "" : "No model is served yet: the panels fill in once a snapshot is loaded.";
    layout(info.panels);
    info.panels.forEach(schedule);
  }

  start();
})();
