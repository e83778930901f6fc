// @ts-check
/**
 * Tiny SVG charts: <svg class="chart" id role="img" aria-label=summary>, axes, legend, <title>
 * tooltips, a data table in <details>; every bar/point has data-label, data-value (data-series).
 */
import { el } from '/assets/common.js';

const NS = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#4263eb', '#f08c00', '#2f9e44', '#d6336c', '#7048e8', '#1098ad', '#a5673f', '#74b816'];
/** @param {number} i */
export const color = (i) => PALETTE[i % PALETTE.length];

/** @typedef {(v: number) => string} Fmt */
/** @typedef {{name: string, values: number[]}} Series */
/** @typedef {{id: string, title: string, format?: Fmt, tickFormat?: Fmt, integer?: boolean, short?: (label: string) => string}} Common */

/** @param {string} tag @param {Record<string, any>} [attrs] @param {...(Node|null)} kids */
function s(tag, attrs = {}, ...kids) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) n.setAttribute(k, String(v));
  for (const k of kids) if (k) n.append(k);
  return n;
}
/** @param {string} text */
function tip(text) {
  const t = s('title');
  t.textContent = text;
  return t;
}
/** @param {number} x @param {number} y @param {string} text @param {Record<string, any>} [attrs] */
function txt(x, y, text, attrs = {}) {
  const t = s('text', { x, y, class: 'tick', ...attrs });
  t.textContent = text;
  return t;
}
/** @param {string} text @param {number} max */
const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Round tick values from 0 covering max. @param {number} max @param {boolean} [integer] */
export function ticks(max, integer = false, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const out = [];
  for (let i = 0; ; i++) {
    const v = +(i * step).toPrecision(12);
    out.push(v);
    if (v >= max) return out;
  }
}

/** @param {HTMLElement} container */
function noData(container) {
  container.replaceChildren(el('p', { class: 'chart-empty', text: 'No data yet' }));
  return null;
}

/** @param {HTMLElement} container @param {string} id @param {number} height @param {string} label */
function frame(container, id, height, label) {
  const width = Math.max(300, Math.round(container.clientWidth || 600));
  const svg = s('svg', { id, class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, width: '100%' });
  return { svg, width };
}

/** @param {string[]} names @param {boolean} [always] */
function legend(names, always = false) {
  if (names.length < (always ? 1 : 2)) return null;
  return el('ul', { class: 'legend', 'aria-hidden': 'true' }, names.map((n, i) => {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = color(i);
    return el('li', null, sw, n);
  }));
}

/** @param {string} title @param {string[]} head @param {(string)[][]} rows */
function dataTable(title, head, rows) {
  return el('details', { class: 'chart-data' },
    el('summary', { text: 'Show data table' }),
    el('div', { class: 'table-wrap' }, el('table', null,
      el('caption', { class: 'sr-only', text: title }),
      el('thead', null, el('tr', null, head.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', null, rows.map((r) => el('tr', null, r.map((c, i) => el(i ? 'td' : 'th', i ? { class: 'num' } : { scope: 'row' }, c))))))));
}

/**
 * Puts the chart in place, keeping the data table open across refreshes.
 * @param {HTMLElement} container @param {SVGElement} svg @param {HTMLElement|null} leg @param {HTMLElement} table
 */
function finish(container, svg, leg, table) {
  if (container.querySelector('details[open]')) table.setAttribute('open', '');
  container.replaceChildren(...[svg, leg, table].filter((x) => x !== null));
}

/** Left margin wide enough for the y tick labels. @param {string[]} labels */
const leftFor = (labels) => 14 + Math.max(...labels.map((l) => l.length)) * 6.6;

/**
 * Vertical stacked bars: one bar per category, one segment per series (zeros are not drawn).
 * @param {HTMLElement} container
 * @param {Common & {categories: string[], series: Series[]}} o
 */
export function stackedBarChart(container, o) {
  const { categories, series } = o;
  const fmt = o.format || String;
  const totals = categories.map((_, i) => series.reduce((a, se) => a + (se.values[i] || 0), 0));
  if (!categories.length || !totals.some((v) => v > 0)) return noData(container);
  const tks = ticks(Math.max(...totals), o.integer);
  const top = tks[tks.length - 1];
  const tf = o.tickFormat || fmt;
  const height = 240;
  const sum = totals.reduce((a, b) => a + b, 0);
  const peak = totals.indexOf(Math.max(...totals));
  const label = `${o.title}: ${categories.length} bars from ${categories[0]} to ${categories[categories.length - 1]}, total ${fmt(sum)}, highest ${categories[peak]} with ${fmt(totals[peak])}.${series.length > 1 ? ` Series: ${series.map((x) => x.name).join(', ')}.` : ''}`;
  const { svg, width } = frame(container, o.id, height, label);
  const m = { l: leftFor(tks.map(tf)), r: 12, t: 12, b: 28 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const y = (/** @type {number} */ v) => m.t + ph - (v / top) * ph;
  for (const t of tks) {
    svg.append(s('line', { x1: m.l, x2: width - m.r, y1: y(t), y2: y(t), class: t ? 'grid' : 'axis' }),
      txt(m.l - 6, y(t), tf(t), { 'text-anchor': 'end', 'dominant-baseline': 'middle' }));
  }
  const band = pw / categories.length;
  const bw = Math.max(2, Math.min(56, band * 0.7));
  const every = Math.ceil(categories.length / Math.max(1, Math.floor(pw / 64)));
  categories.forEach((cat, i) => {
    const x = m.l + band * i + (band - bw) / 2;
    let acc = 0;
    series.forEach((se, si) => {
      const v = se.values[i] || 0;
      if (v <= 0) return;
      const y1 = y(acc + v);
      const h = y(acc) - y1;
      acc += v;
      svg.append(s('rect', {
        x, y: y1, width: bw, height: Math.max(0.5, h), fill: color(si), class: 'bar',
        'data-label': cat, 'data-value': v, 'data-series': series.length > 1 ? se.name : null,
      }, tip(`${cat}${series.length > 1 ? ` · ${se.name}` : ''}: ${fmt(v)}`)));
    });
    if (i % every === 0) svg.append(txt(m.l + band * i + band / 2, height - m.b + 17, o.short ? o.short(cat) : cat, { 'text-anchor': 'middle' }));
  });
  const head = series.length > 1 ? ['', ...series.map((x) => x.name), 'Total'] : ['', o.title];
  const rows = categories.map((c, i) => (series.length > 1
    ? [c, ...series.map((se) => fmt(se.values[i] || 0)), fmt(totals[i])]
    : [c, fmt(totals[i])]));
  finish(container, svg, legend(series.map((x) => x.name)), dataTable(o.title, head, rows));
  return svg;
}

/**
 * Plain vertical bars.
 * @param {HTMLElement} container
 * @param {Common & {data: {label: string, value: number}[]}} o
 */
export function barChart(container, o) {
  return stackedBarChart(container, { ...o, categories: o.data.map((d) => d.label), series: [{ name: o.title, values: o.data.map((d) => d.value) }] });
}

/**
 * Horizontal bars, grouped per category (e.g. p50 and p95 per stage).
 * @param {HTMLElement} container
 * @param {Common & {categories: string[], series: Series[]}} o
 */
export function hBarChart(container, o) {
  const { categories, series } = o;
  const fmt = o.format || String;
  const all = series.flatMap((se) => se.values);
  if (!categories.length || !all.some((v) => v > 0)) return noData(container);
  const tks = ticks(Math.max(...all), o.integer, 4);
  const top = tks[tks.length - 1];
  const tf = o.tickFormat || fmt;
  const barH = 12;
  const rowH = series.length * (barH + 2) + 12;
  const m = { l: Math.min(170, 16 + Math.max(...categories.map((c) => c.length)) * 6.6), r: 64, t: 8, b: 26 };
  const height = m.t + m.b + rowH * categories.length;
  const label = `${o.title}: ${categories.map((c, i) => `${c} ${series.map((se) => `${se.name} ${fmt(se.values[i] || 0)}`).join(', ')}`).join('; ')}.`;
  const { svg, width } = frame(container, o.id, height, label);
  const pw = width - m.l - m.r;
  const x = (/** @type {number} */ v) => m.l + (v / top) * pw;
  for (const t of tks) {
    svg.append(s('line', { x1: x(t), x2: x(t), y1: m.t, y2: height - m.b, class: t ? 'grid' : 'axis' }),
      txt(x(t), height - m.b + 16, tf(t), { 'text-anchor': 'middle' }));
  }
  categories.forEach((cat, i) => {
    const y0 = m.t + i * rowH + 6;
    const name = txt(m.l - 8, y0 + (rowH - 12) / 2, clip(cat, 24), { 'text-anchor': 'end', 'dominant-baseline': 'middle' });
    name.append(tip(cat));
    svg.append(name);
    series.forEach((se, si) => {
      const v = se.values[i] || 0;
      const yy = y0 + si * (barH + 2);
      svg.append(s('rect', {
        x: m.l, y: yy, width: Math.max(0.5, x(v) - m.l), height: barH, fill: color(si), class: 'bar',
        'data-label': cat, 'data-value': v, 'data-series': se.name,
      }, tip(`${cat} · ${se.name}: ${fmt(v)}`)),
      txt(x(v) + 4, yy + barH / 2, fmt(v), { 'dominant-baseline': 'middle', class: 'tick bar-value' }));
    });
  });
  const rows = categories.map((c, i) => [c, ...series.map((se) => fmt(se.values[i] || 0))]);
  finish(container, svg, legend(series.map((x) => x.name)), dataTable(o.title, ['', ...series.map((x) => x.name)], rows));
  return svg;
}

/**
 * Lines over a numeric (time) x axis; one line per series, a circle per point.
 * @param {HTMLElement} container
 * @param {Common & {series: {name: string, points: {x: number, y: number, label: string, note?: string}[]}[], yMax?: number, xFormat: Fmt}} o
 */
export function lineChart(container, o) {
  const series = o.series.filter((se) => se.points.length);
  const pts = series.flatMap((se) => se.points);
  if (!pts.length) return noData(container);
  const fmt = o.format || String;
  const tf = o.tickFormat || fmt;
  let x0 = Math.min(...pts.map((p) => p.x));
  let x1 = Math.max(...pts.map((p) => p.x));
  if (x0 === x1) { x0 -= 43200000; x1 += 43200000; }
  const tks = o.yMax ? [0, 0.25, 0.5, 0.75, 1].map((f) => f * /** @type {number} */ (o.yMax)) : ticks(Math.max(...pts.map((p) => p.y)), o.integer);
  const top = tks[tks.length - 1] || 1;
  const height = 240;
  const label = `${o.title}: ${series.map((se) => {
    const last = se.points[se.points.length - 1];
    return `${se.name}, ${se.points.length} points, latest ${fmt(last.y)} on ${last.label}`;
  }).join('; ')}.`;
  const { svg, width } = frame(container, o.id, height, label);
  const m = { l: leftFor(tks.map(tf)), r: 18, t: 14, b: 28 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const x = (/** @type {number} */ v) => m.l + ((v - x0) / (x1 - x0)) * pw;
  const y = (/** @type {number} */ v) => m.t + ph - (v / top) * ph;
  for (const t of tks) {
    svg.append(s('line', { x1: m.l, x2: width - m.r, y1: y(t), y2: y(t), class: t ? 'grid' : 'axis' }),
      txt(m.l - 6, y(t), tf(t), { 'text-anchor': 'end', 'dominant-baseline': 'middle' }));
  }
  const nx = Math.max(2, Math.min(6, Math.floor(pw / 90)));
  let prevTick = '';
  for (let i = 0; i < nx; i++) {
    const v = x0 + ((x1 - x0) * i) / (nx - 1);
    const t = o.xFormat(v);
    if (t !== prevTick) svg.append(txt(x(v), height - m.b + 17, t, { 'text-anchor': i === 0 ? 'start' : i === nx - 1 ? 'end' : 'middle' }));
    prevTick = t;
  }
  series.forEach((se, si) => {
    const ps = [...se.points].sort((a, b) => a.x - b.x);
    const c = color(si);
    svg.append(s('path', { d: ps.map((p, i) => `${i ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(''), stroke: c, fill: 'none', class: 'line' }));
    for (const p of ps) {
      svg.append(s('circle', {
        cx: x(p.x), cy: y(p.y), r: 4, fill: c, class: 'point',
        'data-label': p.label, 'data-value': p.y, 'data-series': se.name,
      }, tip(`${se.name} · ${p.label}: ${fmt(p.y)}${p.note ? ` (${p.note})` : ''}`)));
    }
  });
  const rows = series.flatMap((se) => se.points.map((p) => [se.name, p.label, fmt(p.y), p.note || '']));
  finish(container, svg, legend(series.map((se) => se.name), true), dataTable(o.title, ['Series', 'When', 'Value', 'Details'], rows));
  return svg;
}
