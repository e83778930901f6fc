// @ts-check
import { api, sseEvents, el, getStored, setStored, CHAT_KEY, ApiError, fmtSeconds } from '/assets/common.js';

/** @typedef {{n: number, id: number, title: string, path: string, collection: string, heading: string, snippet: string, score: number, similarity: number|null, cited: boolean}} Source */
/** @typedef {{answer: string, status: string, sources?: Source[], standalone_question?: string|null, cache?: string, latency_ms?: number, request_id?: string, [k: string]: any}} AskResponse */
/** @typedef {{rating?: 'up'|'down', sent?: boolean, escalated?: boolean}} FeedbackState */
/** @typedef {{question: string, response?: AskResponse, error?: string, feedback?: FeedbackState}} Entry */

const SESSION = 'askacme.session';
const HISTORY = 'askacme.history';

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);
const signin = $('signin');
const signinKey = $('signin-key');
const signinError = $('signin-error');
const form = $('ask-form');
const q = $('question');
const askBtn = $('ask');
const messages = $('messages');
const empty = $('empty');
const composer = $('composer');
const banner = $('banner');
const dialog = $('source-view');
const srcTitle = $('source-title');
const srcPath = $('source-path');
const srcBody = $('source-body');
const srcClose = $('source-close');

/** @type {{needs_key: boolean, user: string|null, escalation_contact: string}} */
let config = { needs_key: false, user: null, escalation_contact: '' };
let sessionId = getStored(SESSION) || newSession();
/** @type {Entry[]} */
let history = loadHistory();
/** @type {AbortController|null} */
let inflight = null;
/** @type {WeakMap<Element, Source[]>} */
const bubbleSources = new WeakMap();
/** @type {Map<number, any>} */
const sourceCache = new Map();
/** @type {HTMLElement|null} */
let opener = null;
let uid = 0;

function newSession() {
  const id = crypto.randomUUID();
  setStored(SESSION, id);
  return id;
}

/** @returns {Entry[]} */
function loadHistory() {
  try {
    const h = JSON.parse(getStored(HISTORY) || '[]');
    return Array.isArray(h) ? h.filter((e) => e && typeof e.question === 'string') : [];
  } catch { return []; }
}
const save = () => setStored(HISTORY, JSON.stringify(history));
const key = () => getStored(CHAT_KEY);

/** @param {string} text */
function announce(text) {
  const a = $('announcer');
  a.textContent = '';
  setTimeout(() => { a.textContent = text; }, 50);
}

// ---- sign-in ----------------------------------------------------------------

/** @param {string} [message] shown in the form; forces it open (used after a 401) */
function updateAuth(message) {
  const show = message !== undefined || (config.needs_key && !key());
  signin.hidden = !show;
  composer.hidden = show;
  signinError.hidden = !message;
  signinError.textContent = message || '';
  $('sign-out').hidden = !key();
  if (show) signinKey.focus();
}

signin.addEventListener('submit', (e) => {
  e.preventDefault();
  const k = signinKey.value.trim();
  if (!k) {
    signinError.textContent = 'Enter your API key.';
    signinError.hidden = false;
    signinKey.focus();
    return;
  }
  setStored(CHAT_KEY, k);
  signinKey.value = '';
  updateAuth();
  q.focus();
});

$('sign-out').addEventListener('click', () => {
  setStored(CHAT_KEY, null);
  updateAuth();
  if (signin.hidden) q.focus();
});

// ---- composer ---------------------------------------------------------------

function grow() {
  q.style.height = 'auto';
  q.style.height = `${Math.min(q.scrollHeight, 200)}px`;
}
q.addEventListener('input', grow);
q.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    form.requestSubmit();
  }
});
form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = q.value.trim();
  if (!text || inflight) return;
  if (config.needs_key && !key()) return updateAuth();
  q.value = '';
  grow();
  ask(text);
});

$('new-conversation').addEventListener('click', () => {
  inflight?.abort();
  inflight = null;
  askBtn.disabled = false;
  sessionId = newSession();
  history = [];
  save();
  messages.replaceChildren();
  empty.hidden = false;
  q.focus();
});

const nearBottom = () => innerHeight + scrollY >= document.documentElement.scrollHeight - 140;
const toBottom = () => scrollTo({ top: document.documentElement.scrollHeight });

// ---- asking -----------------------------------------------------------------

/** @param {string} question */
const userBubble = (question) =>
  el('article', { class: 'message user', 'aria-label': 'Your question' }, el('p', { class: 'message-text', text: question }));

const assistantShell = () =>
  el('article', { class: 'message assistant', 'aria-label': 'AskAcme answer' },
    el('div', { class: 'answer-text', 'aria-live': 'polite' }));

/** @param {string} question */
async function ask(question) {
  empty.hidden = true;
  const bubble = assistantShell();
  bubble.dataset.status = 'streaming';
  const textEl = /** @type {HTMLElement} */ (bubble.querySelector('.answer-text'));
  textEl.setAttribute('aria-busy', 'true');
  const typing = el('div', { class: 'typing' },
    el('span', { class: 'sr-only', text: 'AskAcme is thinking…' }),
    el('i', { 'aria-hidden': 'true' }), el('i', { 'aria-hidden': 'true' }), el('i', { 'aria-hidden': 'true' }));
  bubble.prepend(typing);
  messages.append(userBubble(question), bubble);
  toBottom();

  const ctl = (inflight = new AbortController());
  askBtn.disabled = true;
  let text = '';
  /** @type {AskResponse|null} */
  let final = null;
  try {
    const res = await api('/v1/ask', {
      body: { question, session_id: sessionId, stream: true }, key: key(), raw: true, signal: ctl.signal,
    });
    if (!(res.headers.get('content-type') || '').includes('text/event-stream')) {
      final = await res.json();
    } else {
      for await (const { event, data } of sseEvents(res)) {
        if (event === 'delta') {
          const stick = nearBottom();
          typing.remove();
          text += data?.text ?? '';
          renderText(textEl, text, true);
          if (stick) toBottom();
        } else if (event === 'sources') {
          bubbleSources.set(bubble, data?.sources || []);
          bubble.querySelector('.sources')?.remove();
          const list = sourcesBlock(data?.sources);
          if (list) bubble.append(list);
        } else if (event === 'done') {
          final = data;
          break;
        } else if (event === 'error') {
          const err = data?.error || {};
          throw new ApiError(err.message || 'the answer stream failed', 200, err.code, err.type);
        }
      }
    }
    if (!final || typeof final.answer !== 'string') throw new ApiError('the answer stream ended unexpectedly', 200);
    /** @type {Entry} */
    const entry = { question, response: final };
    history.push(entry);
    save();
    const stick = nearBottom();
    fillResponse(bubble, entry);
    if (stick) toBottom();
  } catch (e) {
    if (ctl.signal.aborted) return;
    const err = /** @type {ApiError} */ (e);
    if (err.status === 401) {
      setStored(CHAT_KEY, null);
      fillError(bubble, 'Your API key was not accepted. Please sign in again; your question is back in the box.');
      q.value = question;
      grow();
      updateAuth('That key was not accepted. Please sign in again.');
      return;
    }
    const msg = err.status === 429 ? 'Too many requests, try again in a moment.' : `Something went wrong: ${err.message}`;
    history.push({ question, error: msg });
    save();
    fillError(bubble, msg);
    announce(msg);
  } finally {
    if (inflight === ctl) {
      inflight = null;
      askBtn.disabled = false;
    }
  }
}

/**
 * Renders answer text; with `cite`, `[n]` markers become citation links. Never parses HTML.
 * @param {HTMLElement} node @param {string} text @param {boolean} cite
 */
function renderText(node, text, cite) {
  if (!cite) { node.textContent = text; return; }
  /** @type {(string|Node)[]} */
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const at = m.index ?? 0;
    parts.push(text.slice(last, at),
      el('a', { class: 'citation', href: '#', 'data-n': m[1], 'aria-label': `Source ${m[1]}` }, `[${m[1]}]`));
    last = at + m[0].length;
  }
  parts.push(text.slice(last));
  node.replaceChildren(...parts);
}

/** @param {Source[]|undefined} sources only cited ones are listed; null when none */
function sourcesBlock(sources) {
  const cited = (sources || []).filter((s) => s.cited);
  if (!cited.length) return null;
  return el('div', { class: 'sources' },
    el('h3', { text: 'Sources' }),
    el('ol', null, cited.map((s) => el('li', null,
      el('a', { class: 'source-link', href: '#', 'data-source-id': s.id, 'data-n': s.n, title: s.snippet || null },
        el('span', { class: 'source-n', text: `[${s.n}]` }),
        el('span', { class: 'source-title', text: s.title || s.path })),
      s.heading ? el('span', { class: 'source-heading', text: s.heading }) : null))));
}

/** @param {HTMLElement} bubble */
function resetBubble(bubble) {
  const textEl = /** @type {HTMLElement} */ (bubble.querySelector('.answer-text'));
  for (const c of [...bubble.children]) if (c !== textEl) c.remove();
  textEl.setAttribute('aria-busy', 'false');
  return textEl;
}

/** @param {HTMLElement} bubble @param {string} message */
function fillError(bubble, message) {
  const textEl = resetBubble(bubble);
  bubble.dataset.status = 'error';
  bubbleSources.delete(bubble);
  textEl.textContent = message;
}

/** @param {HTMLElement} bubble @param {Entry} entry */
function fillResponse(bubble, entry) {
  const r = /** @type {AskResponse} */ (entry.response);
  const status = r.status || 'success';
  const textEl = resetBubble(bubble);
  bubble.dataset.status = status;
  if (r.request_id) bubble.dataset.requestId = r.request_id;
  bubbleSources.set(bubble, r.sources || []);
  const notice = status === 'filtered' || status === 'output_filtered';
  bubble.classList.toggle('notice', notice);
  if (notice) {
    textEl.before(el('p', { class: 'notice-title', text: status === 'filtered' ? 'Your question was not processed' : 'The answer could not be shown safely' }));
    renderText(textEl, r.answer, false);
    return;
  }
  renderText(textEl, r.answer, true);
  const sq = r.standalone_question;
  if (sq && sq.trim() !== entry.question.trim()) bubble.append(el('p', { class: 'understood', text: `Understood as: ${sq}` }));
  if (status === 'success') {
    const list = sourcesBlock(r.sources);
    if (list) bubble.append(list);
  }
  const cached = r.cache === 'exact' || r.cache === 'semantic';
  bubble.append(el('p', { class: 'meta' },
    cached ? el('span', { class: 'badge', text: 'cached', title: r.cache === 'exact' ? 'Served from the answer cache' : 'Served from the cache of a very similar question' }) : null,
    typeof r.latency_ms === 'number' ? el('span', { title: 'Response time', text: fmtSeconds(r.latency_ms) }) : null));
  bubble.append(feedbackBlock(entry, status === 'no_answer'));
}

// ---- feedback & escalation --------------------------------------------------

const THUMB = 'M7 10v10H4V10h3zm3 10h7.3a2 2 0 0 0 2-1.6l1.2-6A2 2 0 0 0 18.5 10H14l.7-3.4a1.6 1.6 0 0 0-2.9-1.2L9 10v10z';
function thumbIcon() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  p.setAttribute('d', THUMB);
  svg.append(p);
  return svg;
}

/** @param {Entry} entry @param {boolean} noAnswer */
function feedbackBlock(entry, noAnswer) {
  const fb = (entry.feedback ||= {});
  const requestId = entry.response?.request_id || '';
  const id = `fb-${++uid}`;
  const up = el('button', { type: 'button', class: 'icon-btn feedback-up', 'aria-label': 'Good answer', title: 'Good answer', 'aria-pressed': String(fb.rating === 'up') }, thumbIcon());
  const down = el('button', { type: 'button', class: 'icon-btn feedback-down', 'aria-label': 'Bad answer', title: 'Bad answer', 'aria-pressed': String(fb.rating === 'down') }, thumbIcon());
  const comment = /** @type {HTMLTextAreaElement} */ (el('textarea', { class: 'feedback-comment', id, rows: 2 }));
  const send = el('button', { type: 'button', class: 'btn feedback-send', text: 'Send feedback' });
  const box = el('div', { class: 'feedback-form', hidden: !(fb.rating === 'down' && !fb.sent) },
    el('label', { for: id, text: 'What was wrong or missing? (optional)' }), comment, send);
  const thanks = el('p', { class: 'feedback-thanks', role: 'status', hidden: !fb.sent, text: 'Thanks for your feedback.' });
  const problem = el('p', { class: 'form-error', role: 'alert', hidden: true });
  const escalate = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: noAnswer ? 'btn primary escalate' : 'btn subtle escalate', text: 'Contact HR / a human', disabled: fb.escalated }));
  const contact = el('p', { class: 'escalation-contact', role: 'status', hidden: !fb.escalated, text: config.escalation_contact || 'Please contact HR.' });

  /** @param {'up'|'down'} r */
  const setRating = (r) => {
    fb.rating = r;
    up.setAttribute('aria-pressed', String(r === 'up'));
    down.setAttribute('aria-pressed', String(r === 'down'));
    save();
  };
  /** @param {{rating: 'up'|'down', comment?: string, escalated?: boolean}} body */
  const post = async (body) => {
    problem.hidden = true;
    try {
      await api('/v1/feedback', { body: { request_id: requestId, ...body }, key: key() });
      fb.sent = true;
      save();
      thanks.hidden = false;
      return true;
    } catch (e) {
      const err = /** @type {ApiError} */ (e);
      if (err.status === 401) { setStored(CHAT_KEY, null); updateAuth('Your key was not accepted. Please sign in again.'); }
      problem.textContent = `Could not send feedback: ${err.message}`;
      problem.hidden = false;
      return false;
    }
  };

  up.addEventListener('click', async () => {
    if (fb.rating === 'up' && fb.sent) return;
    setRating('up');
    comment.placeholder = 'Anything to add?';
    box.hidden = false;
    await post({ rating: 'up' });
  });
  down.addEventListener('click', () => {
    setRating('down');
    thanks.hidden = true;
    comment.placeholder = '';
    box.hidden = false;
    comment.focus();
  });
  send.addEventListener('click', async () => {
    const text = comment.value.trim();
    if (await post({ rating: fb.rating || 'down', comment: text || undefined })) {
      box.hidden = true;
      comment.value = '';
    }
  });
  escalate.addEventListener('click', async () => {
    escalate.disabled = true;
    contact.hidden = false;
    if (await post({ rating: fb.rating || 'down', escalated: true })) {
      fb.escalated = true;
      save();
    } else escalate.disabled = false;
  });

  const thumbs = el('div', { class: 'feedback', role: 'group', 'aria-label': 'Rate this answer' }, up, down);
  return el('div', { class: 'answer-actions' },
    noAnswer ? el('div', { class: 'no-answer' }, el('p', { class: 'no-answer-hint', text: "The handbook doesn't seem to cover this. You can contact a human:" }), escalate, contact) : null,
    el('div', { class: 'action-row' }, thumbs, noAnswer ? null : escalate),
    noAnswer ? null : contact, box, thanks, problem);
}

// ---- source view ------------------------------------------------------------

messages.addEventListener('click', (e) => {
  const a = e.target instanceof Element ? /** @type {HTMLElement|null} */ (e.target.closest('a.citation, a.source-link')) : null;
  if (!a) return;
  e.preventDefault();
  if (a.classList.contains('source-link')) return void openSource(Number(a.dataset.sourceId), a);
  const bubble = a.closest('.message');
  const src = (bubble && bubbleSources.get(bubble) || []).find((s) => s.n === Number(a.dataset.n));
  if (src) openSource(src.id, a);
  else announce(`Source ${a.dataset.n} is not available yet.`);
});

/** @param {number} id @param {HTMLElement} from */
async function openSource(id, from) {
  opener = from;
  srcTitle.textContent = 'Loading source…';
  srcPath.textContent = '';
  srcBody.replaceChildren();
  if (!dialog.open) dialog.showModal();
  srcClose.focus();
  try {
    const doc = sourceCache.get(id) || (await api(`/v1/sources/${encodeURIComponent(id)}`, { key: key() }));
    sourceCache.set(id, doc);
    if (opener !== from || !dialog.open) return;
    srcTitle.textContent = doc.title || doc.path || `Source ${id}`;
    srcPath.textContent = [doc.collection, doc.path].filter(Boolean).join(' · ');
    /** @type {Node[]} */
    const nodes = [];
    /** @type {string|null} */
    let prev = null;
    for (const seg of doc.segments || []) {
      if (seg.heading && seg.heading !== prev) nodes.push(el('h3', { class: 'segment-heading', text: seg.heading }));
      prev = seg.heading;
      nodes.push(el('p', { class: 'segment' }, seg.cited ? el('mark', { class: 'cited', text: seg.text }) : seg.text));
    }
    srcBody.replaceChildren(...(nodes.length ? nodes : [el('p', { class: 'muted', text: 'This source has no text.' })]));
    srcBody.querySelector('mark.cited')?.scrollIntoView({ block: 'center' });
  } catch (e) {
    if (opener !== from) return;
    const err = /** @type {ApiError} */ (e);
    srcTitle.textContent = 'Source unavailable';
    srcBody.replaceChildren(el('p', { class: 'form-error', text: `Could not load the source: ${err.message}` }));
  }
}

const closeSource = () => { if (dialog.open) dialog.close(); };
srcClose.addEventListener('click', closeSource);
dialog.addEventListener('cancel', (e) => { e.preventDefault(); closeSource(); });
dialog.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); closeSource(); } });
dialog.addEventListener('click', (e) => { if (e.target === dialog) closeSource(); });
dialog.addEventListener('close', () => {
  const back = opener;
  opener = null;
  (back && back.isConnected ? back : q).focus();
});

// ---- start --------------------------------------------------------------------

function renderHistory() {
  messages.replaceChildren();
  for (const entry of history) {
    const bubble = assistantShell();
    messages.append(userBubble(entry.question), bubble);
    if (entry.response) fillResponse(bubble, entry);
    else fillError(bubble, entry.error || 'Something went wrong.');
  }
  empty.hidden = history.length > 0;
}

async function init() {
  try {
    config = { ...config, ...(await api('/ui/config')) };
  } catch (e) {
    banner.textContent = `Could not load the settings: ${/** @type {Error} */ (e).message}`;
    banner.hidden = false;
  }
  if (config.user) {
    const u = $('user');
    u.textContent = `Signed in as ${config.user}`;
    u.hidden = false;
  }
  renderHistory();
  updateAuth();
  if (history.length) toBottom();
  if (signin.hidden) q.focus();
}

init();
