// Small helpers shared by the pages: fetching JSON, building DOM, formatting.

/** An endpoint that answered 404 (or is not mounted): pages show "not available yet" for it. */
export class NotAvailable extends Error {
  constructor(url) {
    super(`${url} is not available`);
    this.url = url;
  }
}

/**
 * JSON.parse that keeps integers beyond 2^53 (Iceberg snapshot ids) exact, as strings; the reviver's
 * third argument (the source text) is in every current browser.
 */
export function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source))
      return context.source;
    return value;
  });
}

const TOKEN_KEY = 'tributary.token';

function withToken(init) {
  const token = typeof localStorage === 'undefined' ? null : localStorage.getItem(TOKEN_KEY);
  return token ? { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } } : init;
}

/** Fetches JSON; throws NotAvailable on 404/501, and an Error carrying the server's message otherwise. */
export async function api(url, options = {}) {
  const init = { ...options, headers: { accept: 'application/json', ...(options.headers || {}) } };
  if (options.body !== undefined && typeof options.body !== 'string') {
    init.body = JSON.stringify(options.body);
    init.headers['content-type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(url, withToken(init));
    // A server with bearer tokens configured: ask once, keep the token for this browser, retry.
    if (res.status === 401 && typeof window !== 'undefined' && window.prompt) {
      const token = window.prompt('This server needs an access token (Authorization: Bearer ...):');
      if (token) {
        localStorage.setItem(TOKEN_KEY, token.trim());
        res = await fetch(url, withToken(init));
      }
    }
  } catch (err) {
    throw new Error(`cannot reach the server (${err.message})`);
  }
  const text = await res.text();
  if (res.status === 404 && !text.includes('NoSuch') && !text.includes('does not exist')) throw new NotAvailable(url);
  if (res.status === 501) throw new NotAvailable(url);
  let body;
  try {
    body = text ? parseJson(text) : null;
  } catch {
    body = text;
  }
  if (!res.ok) throw new Error(errorMessage(body) || `${res.status} ${res.statusText}`);
  return body;
}

function errorMessage(body) {
  if (!body || typeof body !== 'object') return typeof body === 'string' ? body.slice(0, 300) : '';
  if (typeof body.errorMessage === 'string') return body.errorMessage; // Druid
  if (body.error && typeof body.error === 'object' && body.error.message) return body.error.message; // Iceberg REST
  if (typeof body.message === 'string') return body.message;
  return JSON.stringify(body).slice(0, 300);
}

/** `h('div.card', { onclick }, child, ...)`: an element with classes, attributes and children. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs)
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A table from rows of objects; `columns` are keys or `{ key, label, render }`. */
export function table(rows, columns, options = {}) {
  const cols = (columns || Object.keys(rows[0] || {})).map((c) => (typeof c === 'string' ? { key: c, label: c } : c));
  if (rows.length === 0) return h('p.muted', null, options.empty || 'Nothing here yet.');
  return h(
    'div.table-wrap',
    null,
    h(
      'table',
      { class: options.class },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          cols.map((c) => h('th', { class: c.numeric ? 'num' : null }, c.label ?? c.key)),
        ),
      ),
      h(
        'tbody',
        null,
        rows.map((r) =>
          h(
            'tr',
            {
              onclick: options.onRowClick ? () => options.onRowClick(r) : null,
              class: options.onRowClick ? 'link' : null,
            },
            cols.map((c) => h('td', { class: c.numeric ? 'num' : null }, c.render ? c.render(r) : cell(r[c.key]))),
          ),
        ),
      ),
    ),
  );
}

export function cell(v) {
  if (v === null || v === undefined) return h('span.muted', null, 'null');
  if (typeof v === 'object') return h('code', null, JSON.stringify(v));
  return String(v);
}

export function card(title, ...children) {
  return h('section.card', null, title ? h('h2', null, title) : null, ...children);
}

export function stat(label, value) {
  return h('div.stat', null, h('div.stat-value', null, value), h('div.stat-label', null, label));
}

export function notAvailable(what) {
  return h('div.notice', null, `${what}: not available yet on this server.`);
}

export function errorBox(err) {
  return h('div.error', { role: 'alert' }, err instanceof Error ? err.message : String(err));
}

/** Renders what a loader returns into `el`, or a notice / error. */
export async function load(el, what, loader) {
  try {
    const content = await loader();
    el.replaceChildren(...[content].flat().filter((c) => c !== null && c !== undefined && c !== false));
  } catch (err) {
    el.replaceChildren(err instanceof NotAvailable ? notAvailable(what) : errorBox(err));
  }
}

export function fmtNumber(n) {
  if (n === null || n === undefined || n === '') return '';
  const x = Number(n);
  if (!Number.isFinite(x)) return String(n);
  return x.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function fmtBytes(n) {
  let x = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toLocaleString('en-US', { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}

export function fmtTime(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace('T', ' ').replace('Z', '');
}

export function enc(s) {
  return encodeURIComponent(s);
}
