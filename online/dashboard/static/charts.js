// Small hand-written SVG charts: a line chart over time and a histogram. No libraries.
(() => {
  "use strict";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const W = 560, H = 210, M = { left: 58, right: 12, top: 22, bottom: 38 };
  const COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed"];

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return ticks;
  }

  function tickText(value) {
    const abs = Math.abs(value);
    if (abs >= 1000) return value.toFixed(0);
    if (abs >= 10) return value.toFixed(0).replace(/\.0$/, "");
    if (abs >= 1) return value.toFixed(1).replace(/\.0$/, "");
    return value.toPrecision(2).replace(/0+$/, "").replace(/\.$/, "");
  }

  function agoText(seconds) {
    if (seconds < 1) return "now";
    if (seconds < 120) return `-${Math.round(seconds)} s`;
    if (seconds < 7200) return `-${Math.round(seconds / 60)} min`;
    return `-${(seconds / 3600).toFixed(1)} h`;
  }

  function frame(svg, xLabel, yLabel) {
    svg.appendChild(svgEl("text", { x: M.left + (W - M.left - M.right) / 2, y: H - 4,
      "text-anchor": "middle", class: "axis-label" }, xLabel));
    svg.appendChild(svgEl("text", { x: 12, y: M.top + (H - M.top - M.bottom) / 2,
      transform: `rotate(-90 12 ${M.top + (H - M.top - M.bottom) / 2})`,
      "text-anchor": "middle", class: "axis-label" }, yLabel));
  }

  function yAxis(svg, lo, hi, y) {
    for (const v of niceTicks(lo, hi, 4)) {
      svg.appendChild(svgEl("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: "grid" }));
      svg.appendChild(svgEl("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end",
        class: "tick" }, tickText(v)));
    }
  }

  // Legend entries right-aligned on the title's line, so they never cover the lines.
  function legend(svg, names) {
    let right = W - M.right;
    for (let index = names.length - 1; index >= 0; index--) {
      const width = 16 + names[index].length * 5.6;
      right -= width + 8;
      const color = COLORS[index % COLORS.length];
      svg.appendChild(svgEl("rect", { x: right, y: 8, width: 10, height: 3, fill: color }));
      svg.appendChild(svgEl("text", { x: right + 14, y: 13, class: "legend" }, names[index]));
    }
  }

  // series: [{name, values: [number|null]}], t: epoch seconds of each value.
  function lineChart({ t, series, yLabel, title, now, yMin }) {
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
      "aria-label": title });
    svg.appendChild(svgEl("text", { x: M.left, y: 14, class: "chart-title" }, title));
    const values = series.flatMap((s) => s.values).filter((v) => v !== null && isFinite(v));
    if (t.length < 2 || values.length === 0) {
      svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle",
        class: "empty-chart" }, "no data yet"));
      return svg;
    }
    const end = now === undefined ? t[t.length - 1] : now;
    const start = Math.min(t[0], end - 1);
    let lo = yMin === undefined ? Math.min(...values) : Math.min(yMin, ...values);
    let hi = Math.max(...values);
    if (hi === lo) { hi = lo + (Math.abs(lo) || 1) * 0.5; lo = yMin === undefined ? lo - (hi - lo) : lo; }
    const x = (v) => M.left + ((v - start) / (end - start)) * (W - M.left - M.right);
    const y = (v) => H - M.bottom - ((v - lo) / (hi - lo)) * (H - M.top - M.bottom);
    yAxis(svg, lo, hi, y);
    for (const v of niceTicks(0, end - start, 4)) {
      svg.appendChild(svgEl("text", { x: x(end - v), y: H - M.bottom + 14, "text-anchor": "middle",
        class: "tick" }, agoText(v)));
    }
    frame(svg, "time (before now)", yLabel);
    series.forEach((s, index) => {
      let d = "", pen = "M";
      s.values.forEach((v, i) => {
        if (v === null || !isFinite(v)) { pen = "M"; return; }
        d += `${pen}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
        pen = "L";
      });
      const color = COLORS[index % COLORS.length];
      svg.appendChild(svgEl("path", { d, class: "line", stroke: color }));
    });
    legend(svg, series.map((s) => s.name));
    return svg;
  }

  // edges: n + 1 bin edges, counts: n counts.
  function histogram({ edges, counts, xLabel, yLabel, title }) {
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
      "aria-label": title });
    svg.appendChild(svgEl("text", { x: M.left, y: 14, class: "chart-title" }, title));
    const top = Math.max(0, ...counts);
    if (top === 0) {
      svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle",
        class: "empty-chart" }, "no data yet"));
      return svg;
    }
    const lo = edges[0], hi = edges[edges.length - 1];
    const x = (v) => M.left + ((v - lo) / (hi - lo)) * (W - M.left - M.right);
    const y = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);
    yAxis(svg, 0, top, y);
    counts.forEach((c, i) => {
      svg.appendChild(svgEl("rect", { x: x(edges[i]) + 1, y: y(c), width: Math.max(1, x(edges[i + 1]) - x(edges[i]) - 2),
        height: y(0) - y(c), class: "bar" }, undefined));
    });
    for (const v of niceTicks(lo, hi, 5)) {
      svg.appendChild(svgEl("text", { x: x(v), y: H - M.bottom + 14, "text-anchor": "middle",
        class: "tick" }, tickText(v)));
    }
    frame(svg, xLabel, yLabel);
    return svg;
  }

  window.VeloxCharts = { lineChart, histogram };
})();
