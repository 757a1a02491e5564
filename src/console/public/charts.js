// Inline SVG charts: a line chart over time and a bar chart over categories. No library.

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed', '#0891b2', '#dc2626', '#4b5563'];

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function shortNumber(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

const W = 720;
const H = 240;
const PAD = { left: 52, right: 16, top: 16, bottom: 36 };

function frame(title, yMax, labelFor) {
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
    'aria-label': title,
    preserveAspectRatio: 'xMidYMid meet',
  });
  const plotH = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    svg.append(s('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'grid' }));
    const t = s('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' });
    t.textContent = labelFor((yMax * i) / 4);
    svg.append(t);
  }
  return svg;
}

function legend(names) {
  const div = document.createElement('div');
  div.className = 'legend';
  names.forEach((n, i) => {
    const item = document.createElement('span');
    const sw = document.createElement('i');
    sw.style.background = COLORS[i % COLORS.length];
    item.append(sw, document.createTextNode(n));
    div.append(item);
  });
  return div;
}

/**
 * A line chart: `series` is [{ name, points: [{ x (number: ms or index), y }] }]. `xLabel(x)` formats ticks.
 * Draws a circle per point when there are few points.
 */
export function lineChart(series, options = {}) {
  const wrap = document.createElement('figure');
  wrap.className = 'chart-wrap';
  const all = series.flatMap((se) => se.points);
  if (all.length === 0) {
    wrap.textContent = options.empty || 'No data yet.';
    wrap.classList.add('muted');
    return wrap;
  }
  const xs = all.map((p) => p.x);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  const yMax = niceMax(Math.max(...all.map((p) => p.y)));
  const svg = frame(options.title || 'chart', yMax, options.yLabel || shortNumber);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const X = (x) => PAD.left + ((x - x0) / (x1 - x0)) * plotW;
  const Y = (y) => PAD.top + plotH - (y / yMax) * plotH;
  const xLabel = options.xLabel || ((x) => shortNumber(x));
  for (let i = 0; i <= 4; i++) {
    const x = x0 + ((x1 - x0) * i) / 4;
    // the end labels hug the plot edges so they are not clipped
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    const t = s('text', { x: X(x), y: H - 12, 'text-anchor': anchor, class: 'axis' });
    t.textContent = xLabel(x);
    svg.append(t);
  }
  series.forEach((se, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = [...se.points].sort((a, b) => a.x - b.x);
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join('');
    svg.append(s('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, class: 'line' }));
    if (pts.length <= 60)
      for (const p of pts) {
        const c = s('circle', { cx: X(p.x), cy: Y(p.y), r: 3, fill: color, class: 'point' });
        const tip = s('title');
        tip.textContent = `${se.name}: ${xLabel(p.x)} → ${p.y}`;
        c.append(tip);
        svg.append(c);
      }
  });
  wrap.append(svg);
  if (series.length > 1 || options.legend) wrap.append(legend(series.map((se) => se.name)));
  return wrap;
}

/** A grouped bar chart: `labels` along x, `series` [{ name, values }] (one value per label). */
export function barChart(labels, series, options = {}) {
  const wrap = document.createElement('figure');
  wrap.className = 'chart-wrap';
  if (labels.length === 0 || series.length === 0) {
    wrap.textContent = options.empty || 'No data to chart.';
    wrap.classList.add('muted');
    return wrap;
  }
  const yMax = niceMax(Math.max(0, ...series.flatMap((se) => se.values.map(Number).filter(Number.isFinite))));
  const svg = frame(options.title || 'chart', yMax, shortNumber);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const band = plotW / labels.length;
  const barW = Math.max(1, (band * 0.8) / series.length);
  const every = Math.ceil(labels.length / 12);
  labels.forEach((label, i) => {
    series.forEach((se, j) => {
      const v = Math.max(0, Number(se.values[i]) || 0);
      const hgt = (v / yMax) * plotH;
      const r = s('rect', {
        x: PAD.left + band * i + band * 0.1 + barW * j,
        y: PAD.top + plotH - hgt,
        width: barW,
        height: hgt,
        fill: COLORS[j % COLORS.length],
        class: 'bar',
      });
      const tip = s('title');
      tip.textContent = `${label} · ${se.name}: ${se.values[i]}`;
      r.append(tip);
      svg.append(r);
    });
    if (i % every === 0) {
      const t = s('text', { x: PAD.left + band * (i + 0.5), y: H - 12, 'text-anchor': 'middle', class: 'axis' });
      const text = String(label);
      t.textContent = text.length > 14 ? `${text.slice(0, 13)}…` : text;
      svg.append(t);
    }
  });
  wrap.append(svg);
  if (series.length > 1) wrap.append(legend(series.map((se) => se.name)));
  return wrap;
}

/** A layered left-to-right graph of `nodes` [{ id, label, kind }] and `edges` [{ from, to }]. */
export function graph(nodes, edges) {
  const depth = new Map(nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < nodes.length; round++)
    for (const e of edges) {
      const d = (depth.get(e.from) ?? 0) + 1;
      if (depth.has(e.to) && d > depth.get(e.to) && d < nodes.length) depth.set(e.to, d);
    }
  const layers = [];
  for (const n of nodes) {
    const d = depth.get(n.id);
    if (!layers[d]) layers[d] = [];
    layers[d].push(n);
  }
  const colW = 250;
  const nodeW = 200;
  const rowH = 56;
  const height = Math.max(...layers.map((l) => (l ? l.length : 0)), 1) * rowH + 20;
  const width = (layers.length - 1) * colW + nodeW + 20;
  // drawn at its natural size (capped by the page width) so text keeps its size
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: 'chart graph',
    role: 'img',
    'aria-label': 'graph',
  });
  const pos = new Map();
  layers.forEach((layer, i) => {
    (layer || []).forEach((n, j) => {
      pos.set(n.id, { x: 10 + i * colW, y: 10 + j * rowH });
    });
  });
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    svg.append(
      s('path', {
        d: `M${a.x + nodeW},${a.y + 18} C${a.x + nodeW + 25},${a.y + 18} ${b.x - 25},${b.y + 18} ${b.x},${b.y + 18}`,
        class: 'edge',
        fill: 'none',
      }),
    );
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const g = s('g', { class: `node ${n.kind || ''}` });
    g.append(s('rect', { x: p.x, y: p.y, width: nodeW, height: 36, rx: 6 }));
    const t = s('text', { x: p.x + nodeW / 2, y: p.y + 22, 'text-anchor': 'middle' });
    const label = String(n.label ?? n.id);
    t.textContent = label.length > 30 ? `${label.slice(0, 29)}…` : label;
    const tip = s('title');
    tip.textContent = label;
    g.append(tip);
    g.append(t);
    svg.append(g);
  }
  return svg;
}
