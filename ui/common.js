// @ts-check
/** Shared helpers for the AskAcme chat and dashboard pages. */

export const CHAT_KEY = 'askacme.key';
export const ADMIN_KEY = 'askacme.adminKey';

/** @param {string} name @returns {string|null} */
export function getStored(name) {
  try { return sessionStorage.getItem(name); } catch { return null; }
}

/** @param {string} name @param {string|null} value `null` removes the entry */
export function setStored(name, value) {
  try {
    if (value == null) sessionStorage.removeItem(name);
    else sessionStorage.setItem(name, value);
  } catch { /* storage unavailable (private mode, quota): keep going in memory */ }
}

/** An error returned by the server (or a network failure, status 0). */
export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {string|null} [code] @param {string|null} [type] */
  constructor(message, status, code = null, type = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.type = type;
  }
}

/**
 * @typedef {object} ApiOptions
 * @property {string} [method] defaults to POST when a body is given, GET otherwise
 * @property {unknown} [body] sent as JSON
 * @property {string|null} [key] API key sent as a bearer token
 * @property {boolean} [raw] resolve with the Response (for streaming) instead of parsed JSON
 * @property {AbortSignal} [signal]
 */

/**
 * Calls the server. Non-2xx answers become a thrown ApiError carrying `.status` and `.code`.
 * @param {string} path
 * @param {ApiOptions} [opts]
 * @returns {Promise<any>}
 */
export async function api(path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: opts.raw ? 'text/event-stream, application/json' : 'application/json' };
  if (opts.key) headers.Authorization = `Bearer ${opts.key}`;
  /** @type {RequestInit} */
  const init = { method: opts.method || (opts.body === undefined ? 'GET' : 'POST'), headers, signal: opts.signal };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  /** @type {Response} */
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new ApiError('Could not reach the server. Check your connection and try again.', 0, 'network_error');
  }
  if (!res.ok) throw await errorFrom(res);
  if (opts.raw) return res;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** @param {Response} res @returns {Promise<ApiError>} */
async function errorFrom(res) {
  let message = res.statusText || `HTTP ${res.status}`;
  /** @type {string|null} */ let code = null;
  /** @type {string|null} */ let type = null;
  try {
    const text = await res.text();
    try {
      const err = JSON.parse(text)?.error;
      if (err && typeof err.message === 'string') {
        message = err.message;
        code = err.code ?? null;
        type = err.type ?? null;
      }
    } catch {
      if (text.trim()) message = text.trim().slice(0, 300);
    }
  } catch { /* body unreadable */ }
  return new ApiError(message, res.status, code, type);
}

/**
 * Parses a text/event-stream body. Yields one `{event, data}` per event; `data` is JSON-parsed
 * when possible (the raw string otherwise). Comment lines (`:`) are ignored.
 * @param {Response} response
 * @returns {AsyncGenerator<{event: string, data: any}>}
 */
export async function* sseEvents(response) {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  /** @type {string[]} */
  let data = [];
  const take = () => {
    const raw = data.join('\n');
    const out = { event: event || 'message', data: /** @type {any} */ (raw) };
    try { out.data = JSON.parse(raw); } catch { /* keep the string */ }
    event = '';
    data = [];
    return out;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const lines = buffer.split('\n');
      buffer = done ? '' : lines.pop() ?? '';
      for (let line of lines) {
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) yield take();
          else event = '';
          continue;
        }
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let val = i < 0 ? '' : line.slice(i + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
      if (done) {
        if (data.length) yield take();
        return;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Builds a DOM element. Attributes: `class`, `text` (textContent), `onX` functions become
 * listeners, `true` sets an empty attribute, `null`/`false`/`undefined` are skipped.
 * Children may be nodes, strings (inserted as text, never parsed as HTML), arrays or null.
 * @param {string} tag
 * @param {Record<string, any>|null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  appendAll(node, children);
  return node;
}

/** @param {Node} node @param {any[]} children */
function appendAll(node, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) appendAll(node, c);
    else node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const DASH = '—';
/** @param {number|null|undefined} n */
export const fmtInt = (n) => (n == null || !isFinite(n) ? DASH : Math.round(n).toLocaleString('en-US'));
/** Integer micro-dollars as dollars with 4 decimals. @param {number|null|undefined} micro */
export const fmtMoney = (micro) => (micro == null || !isFinite(micro) ? DASH : `$${(micro / 1e6).toFixed(4)}`);
/** A 0–1 rate as a percentage. @param {number|null|undefined} rate @param {number} [digits] */
export const fmtPct = (rate, digits = 1) => (rate == null || !isFinite(rate) ? DASH : `${(rate * 100).toFixed(digits)}%`);
/** @param {number|null|undefined} ms */
export function fmtMs(ms) {
  if (ms == null || !isFinite(ms)) return DASH;
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
/** @param {number} ms */
export const fmtSeconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
/** Local "YYYY-MM-DD HH:MM". @param {number} ms */
export function fmtDateTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
