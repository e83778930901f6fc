// @ts-check
import { api, el, getStored, setStored, ADMIN_KEY, fmtInt, fmtMoney, fmtPct, fmtMs, fmtDateTime } from '/assets/common.js';
import { barChart, stackedBarChart, hBarChart, lineChart } from '/assets/charts.js';

/** @typedef {{group: string, answers: number, success: number, no_answer: number, filtered: number, output_filtered: number, thumbs_up: number, thumbs_down: number, rephrased: number, escalated: number, exact_hits: number, semantic_hits: number, cost_micro_usd: number, saved_micro_usd: number, answer_rate: number, no_answer_rate: number, filtered_rate: number, thumbs_up_rate: number|null, rephrase_rate: number, escalation_rate: number, exact_hit_rate: number, semantic_hit_rate: number, latency_p50_ms: number, latency_p95_ms: number}} Figures */

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);
const dash = $('dashboard');
const signin = $('admin-signin');
const keyInput = $('admin-key');
const signinError = $('admin-signin-error');
const errorBanner = $('admin-error');
const select = $('window');
const refreshBtn = $('refresh');
const auto = $('auto-refresh');

const WINDOWS = { '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days' };
let since = new URLSearchParams(location.search).get('since') || '7d';
if (!(since in WINDOWS)) since = '7d';
select.value = since;
let loading = false;
/** @type {any} */
let last = null;

// ---- loading & auth -----------------------------------------------------------

async function load() {
  if (loading) return;
  loading = true;
  refreshBtn.setAttribute('aria-busy', 'true');
  try {
    const data = await api(`/admin/dashboard?since=${encodeURIComponent(since)}`, { key: getStored(ADMIN_KEY) });
    signin.hidden = true;
    errorBanner.hidden = true;
    $('loading').hidden = true;
    dash.hidden = false; // visible first so charts can measure their width
    last = data;
    render(data);
    dash.dataset.loaded = 'true';
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    const err = /** @type {import('/assets/common.js').ApiError} */ (e);
    if (err.status === 401 || err.status === 403) {
      const had = getStored(ADMIN_KEY);
      setStored(ADMIN_KEY, null);
      showSignin(!had ? '' : err.status === 403 ? 'This key does not have admin access. The dashboard needs the master key.' : 'That key was not accepted.');
    } else {
      errorBanner.textContent = `Could not load the dashboard: ${err.message}`;
      errorBanner.hidden = false;
      $('loading').hidden = true;
    }
  } finally {
    loading = false;
    refreshBtn.removeAttribute('aria-busy');
    $('admin-sign-out').hidden = !getStored(ADMIN_KEY);
  }
}

/** @param {string} message */
function showSignin(message) {
  dash.hidden = true;
  delete dash.dataset.loaded;
  $('loading').hidden = true;
  signin.hidden = false;
  signinError.textContent = message;
  signinError.hidden = !message;
  keyInput.focus();
}

signin.addEventListener('submit', (e) => {
  e.preventDefault();
  const k = keyInput.value.trim();
  if (!k) { showSignin('Enter the master key.'); return; }
  setStored(ADMIN_KEY, k);
  keyInput.value = '';
  signin.hidden = true;
  load();
});
$('admin-sign-out').addEventListener('click', () => { setStored(ADMIN_KEY, null); load(); });
select.addEventListener('change', () => {
  since = select.value;
  const url = new URL(location.href);
  url.searchParams.set('since', since);
  history.replaceState(null, '', url);
  load();
});
refreshBtn.addEventListener('click', () => load());
setInterval(() => { if (auto.checked && !document.hidden && signin.hidden) load(); }, 30000);
/** @type {number|undefined} */
let resizeTimer;
addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => { if (last && !dash.hidden) renderCharts(last); }, 200);
});

// ---- rendering ------------------------------------------------------------------

/** @param {any} d */
function render(d) {
  $('window-label').textContent = `(${WINDOWS[/** @type {keyof typeof WINDOWS} */ (since)]})`;
  renderSummary(d.summary || null);
  renderCharts(d);
  figuresTable('table-models', 'Model', d.by_model);
  figuresTable('table-keys', 'Key', d.by_key);
  figuresTable('table-prompts', 'Prompt version', d.by_prompt_version);
  fill('table-top-questions', d.top_questions, (r) => [td(r.question), num(fmtInt(r.times))]);
  fill('table-unanswered', d.top_unanswered, (r) => [td(r.question), num(fmtInt(r.times))]);
  fill('table-feedback', d.feedback, (r) => [
    td(fmtDateTime(r.created_at_ms), 'nowrap'),
    el('td', null, badge(r.rating === 'up' ? 'up' : 'down', r.rating === 'up' ? 'good' : 'bad', r.rating === 'up' ? 'Thumbs up' : 'Thumbs down')),
    td(r.question), td(r.comment || '—', r.comment ? '' : 'muted'), td(r.request_id, 'mono')]);
  fill('table-deployments', d.deployments, (r) => {
    const n = r.window_successes + r.window_failures;
    const state = String(r.state || 'unknown');
    const tone = state === 'closed' ? 'good' : state === 'half_open' ? 'warn' : state === 'open' ? 'bad' : '';
    return [td(r.deployment, 'strong'), el('td', null, r.model, el('div', { class: 'muted small', text: r.provider })), el('td', null, badge(state.replace('_', ' '), tone)),
      num(n ? fmtPct(r.window_failures / n) : '—'), num(`${fmtInt(r.window_successes)} / ${fmtInt(r.window_failures)}`),
      num(r.retry_in_secs == null ? '—' : `${Math.ceil(r.retry_in_secs)} s`), num(`${r.budget_retries}/${r.budget_retries_allowed}`),
      num(fmtInt(r.total_successes)), num(fmtInt(r.total_failures)), num(fmtInt(r.total_retries)),
      num(fmtInt(r.total_retries_refused)), num(fmtInt(r.total_skipped_open))];
  });
  fill('table-semantic', d.semantic_matches, (r) => [
    td(fmtDateTime(r.created_at_ms), 'nowrap'), td(r.question), td(r.matched_question),
    num(Number(r.similarity).toFixed(3)), el('td', null, badge(r.served ? 'yes' : 'no', r.served ? 'good' : '')),
    td(r.reason), el('td', null, r.flagged ? badge('flagged', 'bad') : '—')], (r) => (r.flagged ? 'flagged' : ''));
}

/** @type {[string, string, (f: Figures) => string, ((f: Figures) => string)?][]} */
const TILES = [
  ['answers', 'Answers', (f) => fmtInt(f.answers), (f) => `${fmtInt(f.success)} answered`],
  ['answer_rate', 'Answer rate', (f) => fmtPct(f.answer_rate)],
  ['no_answer_rate', 'No-answer rate', (f) => fmtPct(f.no_answer_rate), (f) => `${fmtInt(f.no_answer)} not covered`],
  ['filtered_rate', 'Filtered rate', (f) => fmtPct(f.filtered_rate), (f) => `${fmtInt(f.filtered)} in · ${fmtInt(f.output_filtered)} out`],
  ['thumbs_up_rate', 'Thumbs-up rate', (f) => fmtPct(f.thumbs_up_rate), (f) => (f.thumbs_up_rate == null ? 'no ratings yet' : `of ${fmtInt(f.thumbs_up + f.thumbs_down)} ratings`)],
  ['thumbs_up', 'Thumbs up', (f) => fmtInt(f.thumbs_up)],
  ['thumbs_down', 'Thumbs down', (f) => fmtInt(f.thumbs_down)],
  ['rephrase_rate', 'Rephrase rate', (f) => fmtPct(f.rephrase_rate), (f) => `${fmtInt(f.rephrased)} follow-ups rewritten`],
  ['escalation_rate', 'Escalation rate', (f) => fmtPct(f.escalation_rate), (f) => `${fmtInt(f.escalated)} escalated`],
  ['exact_hit_rate', 'Exact cache hits', (f) => fmtPct(f.exact_hit_rate), (f) => `${fmtInt(f.exact_hits)} hits`],
  ['semantic_hit_rate', 'Semantic cache hits', (f) => fmtPct(f.semantic_hit_rate), (f) => `${fmtInt(f.semantic_hits)} hits`],
  ['spend', 'Spend', (f) => fmtMoney(f.cost_micro_usd)],
  ['saved', 'Saved by caches', (f) => fmtMoney(f.saved_micro_usd)],
  ['latency_p50', 'Latency p50', (f) => fmtMs(f.latency_p50_ms)],
  ['latency_p95', 'Latency p95', (f) => fmtMs(f.latency_p95_ms)],
];

/** @param {Figures|null} f */
function renderSummary(f) {
  $('summary-empty').hidden = !!f;
  $('tiles').replaceChildren(...TILES.map(([metric, label, value, sub]) =>
    el('div', { class: 'tile', 'data-metric': metric },
      el('dt', { class: 'label', text: label }),
      el('dd', { class: 'value', text: f ? value(f) : '—' }),
      f && sub ? el('dd', { class: 'sub', text: sub(f) }) : null)));
}

/** @param {string} day "YYYY-MM-DD" → "MM-DD" */
const shortDay = (day) => (/^\d{4}-\d\d-\d\d$/.test(day) ? day.slice(5) : day);
/** @param {number} v dollars */
const dollars = (v) => `$${v.toFixed(4)}`;
/** @param {number} v */
const dollarTick = (v) => (v === 0 ? '$0' : `$${+v.toPrecision(3)}`);

/** @param {any} d */
function renderCharts(d) {
  /** @type {{day: string, model: string, requests: number, cost_micro_usd: number}[]} */
  const rbd = d.requests_by_day || [];
  const days = [...new Set(rbd.map((r) => r.day))].sort();
  const models = [...new Set(rbd.map((r) => r.model))].sort();
  /** @param {string} day @param {(r: typeof rbd[number]) => boolean} pick @param {(r: typeof rbd[number]) => number} val */
  const sum = (day, pick, val) => rbd.filter((r) => r.day === day && pick(r)).reduce((a, r) => a + (val(r) || 0), 0);
  stackedBarChart($('wrap-requests'), {
    id: 'chart-requests', title: 'Requests per day', categories: days, integer: true, format: fmtInt, short: shortDay,
    series: models.map((m) => ({ name: m, values: days.map((day) => sum(day, (r) => r.model === m, (r) => r.requests)) })),
  });
  barChart($('wrap-spend'), {
    id: 'chart-spend', title: 'Spend per day', format: dollars, tickFormat: dollarTick, short: shortDay,
    data: days.map((day) => ({ label: day, value: sum(day, () => true, (r) => r.cost_micro_usd) / 1e6 })),
  });
  /** @type {{stage: string, p50_ms: number, p95_ms: number}[]} */
  const stages = d.stages || [];
  hBarChart($('wrap-stages'), {
    id: 'chart-stages', title: 'Latency per stage', format: fmtMs, categories: stages.map((x) => x.stage),
    series: [{ name: 'p50', values: stages.map((x) => x.p50_ms) }, { name: 'p95', values: stages.map((x) => x.p95_ms) }],
  });
  /** @type {Map<string, {x: number, y: number, label: string, note: string}[]>} */
  const bySeries = new Map();
  for (const r of d.eval_runs || []) {
    const name = `${r.suite} · ${r.prompt_version}`;
    if (!bySeries.has(name)) bySeries.set(name, []);
    bySeries.get(name)?.push({ x: r.started_at_ms, y: r.pass_rate, label: fmtDateTime(r.started_at_ms),
      note: `${r.passed}/${r.cases} passed${r.model ? `, ${r.model}` : ''}, run ${r.run_id}` });
  }
  const span = Math.max(0, ...(d.eval_runs || []).map((/** @type {any} */ r) => r.started_at_ms)) -
    Math.min(Infinity, ...(d.eval_runs || []).map((/** @type {any} */ r) => r.started_at_ms));
  lineChart($('wrap-eval'), {
    id: 'chart-eval', title: 'Eval pass rate over time', yMax: 1, format: (v) => fmtPct(v), tickFormat: (v) => fmtPct(v, 0),
    xFormat: (v) => (span < 2 * 86400000 ? fmtDateTime(v).slice(5) : fmtDateTime(v).slice(5, 10)),
    series: [...bySeries].sort((a, b) => a[0].localeCompare(b[0])).map(([name, points]) => ({ name, points })),
  });
}

/** @param {string} id @param {string} groupLabel @param {Figures[]} rows */
function figuresTable(id, groupLabel, rows) {
  const table = $(id);
  const heads = [groupLabel, 'Answers', 'Answer rate', 'No answer', 'Filtered', 'Thumbs-up rate', 'Exact hits', 'Semantic hits', 'Spend', 'Saved', 'p50', 'p95'];
  if (table.tHead && !table.tHead.rows.length) {
    table.tHead.append(el('tr', null, heads.map((h, i) => el('th', { scope: 'col', class: i ? 'num' : null, text: h }))));
  }
  fill(id, rows, (f) => [td(f.group || '(none)', 'strong'), num(fmtInt(f.answers)), num(fmtPct(f.answer_rate)),
    num(fmtPct(f.no_answer_rate)), num(fmtPct(f.filtered_rate)), num(fmtPct(f.thumbs_up_rate)),
    num(fmtPct(f.exact_hit_rate)), num(fmtPct(f.semantic_hit_rate)), num(fmtMoney(f.cost_micro_usd)),
    num(fmtMoney(f.saved_micro_usd)), num(fmtMs(f.latency_p50_ms)), num(fmtMs(f.latency_p95_ms))]);
}

/**
 * @template T
 * @param {string} id @param {T[]|null|undefined} rows @param {(r: T) => Node[]} cells @param {(r: T) => string} [rowClass]
 */
function fill(id, rows, cells, rowClass) {
  const table = $(id);
  const tbody = table.tBodies[0];
  const cols = table.tHead?.rows[0]?.cells.length || 1;
  if (!rows || !rows.length) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: cols, class: 'empty', text: 'No data yet' })));
    return;
  }
  tbody.replaceChildren(...rows.map((r) => el('tr', { class: rowClass?.(r) || null }, cells(r))));
}

/** @param {unknown} text @param {string} [cls] */
const td = (text, cls) => el('td', { class: cls || null, text: text == null ? '—' : String(text) });
/** @param {string} text */
const num = (text) => td(text, 'num');
/** @param {string} text @param {string} tone @param {string} [label] */
const badge = (text, tone, label) => el('span', { class: `badge ${tone}`, text, title: label || null });

load();
