// api.js — the public API client and small DOM helpers shared by every view.
// Only /api routes documented in services/gateway/openapi.yaml are used.

/** ApiError is a problem+json answer (RFC 9457): status, detail and field errors. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.fields = problem.errors || [];
  }
}

/** api sends a JSON request and returns the decoded answer (null for 204). */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: 'Network error', detail: 'The gateway cannot be reached. Check that Polyshop is running.' });
  }
  const ctype = resp.headers.get('Content-Type') || '';
  let data = null;
  if (resp.status !== 204 && ctype.includes('json')) data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const p = data || { title: resp.statusText, detail: `The request failed with HTTP ${resp.status}.` };
    if (resp.status === 429 || resp.status === 503) {
      const ra = resp.headers.get('Retry-After');
      if (ra) p.detail = `${p.detail || p.title} (retry after ${ra} s)`;
    }
    throw new ApiError(resp.status, p);
  }
  if (data && typeof data === 'object') {
    Object.defineProperty(data, '_etag', { value: resp.headers.get('ETag'), enumerable: false });
    Object.defineProperty(data, '_status', { value: resp.status, enumerable: false });
  }
  return data;
}

/** h builds an element: attrs (on* as listeners, others as attributes) and children
 * (strings become text nodes: data never reaches innerHTML). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** money formats {amount (minor units), currency}. */
export function money(m) {
  if (!m) return '—';
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency: m.currency }).format(m.amount / 100);
  } catch {
    return `${(m.amount / 100).toFixed(2)} ${m.currency}`;
  }
}

export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return isNaN(d) ? t : d.toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'medium' });
}

/** problemBox renders an error for the user: the problem's detail and each field error. */
export function problemBox(err) {
  const fields = err.fields || [];
  return h('div', { class: 'msg error', role: 'alert' },
    h('strong', {}, err.status ? `${err.problem?.title || 'Error'} (${err.status}): ` : 'Error: '),
    err.message,
    fields.length ? h('ul', {}, fields.map((f) => h('li', {}, h('code', {}, f.field), ': ', f.reason))) : null);
}

let uid = 0;
/** field renders a labelled control; name is the API field name used to show its error. */
export function field(label, name, attrs = {}) {
  const id = `f${++uid}`;
  const errId = `${id}-err`;
  let control;
  if (attrs.type === 'select') {
    const { options = [], ...rest } = attrs;
    delete rest.type;
    control = h('select', { id, name, 'aria-describedby': errId, ...rest },
      options.map((o) => (typeof o === 'string' ? h('option', { value: o }, o) : h('option', { value: o.value, selected: o.selected }, o.label))));
    if (attrs.value !== undefined) control.value = attrs.value;
  } else if (attrs.type === 'textarea') {
    const rest = { ...attrs };
    delete rest.type;
    control = h('textarea', { id, name, 'aria-describedby': errId, ...rest });
  } else if (attrs.type === 'checkbox') {
    control = h('input', { id, name, 'aria-describedby': errId, ...attrs });
    return h('label', { class: 'inline', for: id, 'data-field': name }, control, label, h('span', { class: 'fielderr', id: errId }));
  } else {
    control = h('input', { id, name, 'aria-describedby': errId, ...attrs });
  }
  return h('label', { for: id, 'data-field': name }, label, control, h('span', { class: 'fielderr', id: errId }));
}

/** showFieldErrors marks the controls of form named by err's field errors. */
export function showFieldErrors(form, err) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.fielderr')) el.textContent = '';
  let first = null;
  for (const f of err?.fields || []) {
    const name = f.field.split('.').pop();
    const control = form.querySelector(`[name="${CSS.escape(f.field)}"]`) || form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!control) continue;
    control.setAttribute('aria-invalid', 'true');
    const msg = document.getElementById(control.getAttribute('aria-describedby'));
    if (msg) msg.textContent = f.reason;
    first = first || control;
  }
  return first;
}

/** submitter wires a form: onSubmit(values) runs with the button disabled; an ApiError is
 * shown above the form and on its fields. */
export function onForm(form, onSubmit) {
  const box = h('div', { 'aria-live': 'assertive' });
  form.prepend(box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = form.querySelector('button[type=submit]');
    if (btn) btn.disabled = true;
    box.replaceChildren();
    showFieldErrors(form, null);
    try {
      await onSubmit(Object.fromEntries(new FormData(form)), form);
    } catch (err) {
      box.replaceChildren(problemBox(err));
      (showFieldErrors(form, err) || box).focus?.();
    } finally {
      if (btn) btn.disabled = false;
    }
  });
  return form;
}

export const OWNER_ENGINE = {
  users: 'PostgreSQL', sessions: 'Redis', catalog: 'MongoDB', inventory: 'PostgreSQL',
  orders: 'PostgreSQL', payments: 'PostgreSQL', activity: 'Cassandra', search: 'Elasticsearch',
};
