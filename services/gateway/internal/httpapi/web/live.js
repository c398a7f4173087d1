// live.js — the live event view: every domain event, saga command and reply as it flows
// through NATS, from GET /api/events (server-sent events), coloured by owner and engine.
import { api, h, when, field } from './api.js';
import { state, onLeave } from './app.js';

const KEEP = 1000;

function short(type) { return String(type || '').replace(/^polyshop\./, ''); }

/** eventLine renders one event: owner colour, engine, kind, type, subject, correlation. */
export function eventLine(e, onOrder) {
  if (e.kind === 'gap') {
    return h('li', { class: 'ev msg warn' }, `${e.stream}: ${e.data?.skipped ?? 'some'} older events are no longer available (gap).`);
  }
  const orderId = e.data?.orderId || (e.owner === 'orders' && e.kind === 'event' ? e.subject : null);
  return h('li', { class: `ev own-${e.owner}`, 'data-type': short(e.type), 'data-stream': e.stream },
    h('div', { class: 'meta' },
      h('strong', { class: `t-${e.owner}` }, e.owner), h('span', { class: 'eng' }, e.engine || '—'),
      h('span', { class: 'badge' }, e.kind),
      h('code', {}, short(e.type)),
      h('span', { class: 'muted' }, `${when(e.time)} · ${e.stream} #${e.seq}`),
      orderId && onOrder ? h('button', { type: 'button', class: 'linkish', onclick: () => onOrder(orderId) }, `follow order ${orderId.slice(0, 8)}…`) : null),
    h('details', {}, h('summary', {}, `subject ${e.subject || '—'}${e.correlationid ? ` · correlation ${e.correlationid.slice(0, 13)}…` : ''}`),
      h('pre', {}, JSON.stringify({ id: e.id, subject: e.subject, correlationid: e.correlationid, causationid: e.causationid, sequence: e.sequence, data: e.data }, null, 2))));
}

/** PATTERNS are the lab pattern switches with their values, the default first
 * (shared/chaos/patterns.go; a Go test keeps them equal). */
export const PATTERNS = { 'users.publish': ['outbox', 'direct'], 'inventory.dedup': ['on', 'off'], 'orders.addressCopy': ['async', 'sync'] };
const PATTERN_DEFAULTS = Object.fromEntries(Object.entries(PATTERNS).map(([k, v]) => [k, v[0]]));

/** switchesOn lists what is switched away from the defaults in a faults document (GET
 * /api/admin/faults): pattern switches, armed crash points, duplicates, payments and
 * inventory faults. */
export function switchesOn(f) {
  const on = [];
  for (const [k, v] of Object.entries(f.patterns || {})) if (PATTERN_DEFAULTS[k] !== undefined && v !== PATTERN_DEFAULTS[k]) on.push(`pattern ${k} = ${v}`);
  for (const [k, p] of Object.entries(f.crashPoints || {})) on.push(`crash point ${k} armed (p ${p})`);
  if ((f.duplicates || 1) > 1) on.push(`duplicates ×${f.duplicates}`);
  const pay = f.payments || {}, inv = f.inventory || {};
  if (pay.down) on.push('payments down');
  if (pay.declineRate) on.push(`payments declineRate ${pay.declineRate}`);
  if (pay.errorRate) on.push(`payments errorRate ${pay.errorRate}`);
  if (pay.latencyMs) on.push(`payments latency ${pay.latencyMs} ms`);
  if (inv.down) on.push('inventory down');
  if (inv.latencyMs) on.push(`inventory latency ${inv.latencyMs} ms`);
  return on;
}

/** switchesBanner shows which lab switches are on (admins only: the faults document is an
 * admin route); it refreshes with refresh(). */
export function switchesBanner() {
  const box = h('div', { id: 'switches-banner', role: 'status' });
  box.refresh = async () => {
    try {
      const f = await api('GET', '/api/admin/faults');
      const on = switchesOn(f);
      box.replaceChildren(on.length
        ? h('div', { class: 'msg warn' }, h('strong', {}, 'Lab switches on: '), h('ul', { class: 'inline-list' }, on.map((x) => h('li', {}, x))),
          state.me?.role === 'admin' ? h('a', { href: '#/admin/faults' }, 'Fault switches') : null)
        : h('p', { class: 'muted' }, 'Lab switches: all off (every pattern at its default, no crash point armed, no duplicates).'),
        f.saga?.stepTimeoutMs ? h('p', { class: 'muted' }, `Saga step timeout: ${f.saga.stepTimeoutMs} ms.`) : null,
        f.degraded?.length ? h('p', { class: 'msg warn' }, `Switches unknown for: ${f.degraded.join(', ')} (not answering)`) : null);
    } catch {
      box.replaceChildren();
    }
  };
  box.refresh();
  return box;
}

export function view(q) {
  const all = [];
  const list = h('ol', { class: 'events', id: 'live-events', 'aria-label': 'Events, newest first' });
  const status = h('p', { class: 'muted', id: 'live-status', role: 'status' }, 'Connecting…');
  const filters = h('form', { class: 'row', 'aria-label': 'Filter events' },
    field('Stream', 'stream', { type: 'select', options: ['', 'USERS', 'SESSIONS', 'CATALOG', 'INVENTORY', 'ORDERS', 'PAYMENTS'].map((s) => ({ value: s, label: s || 'All streams' })), value: q.stream || '' }),
    field('Type contains', 'type', { value: q.type || '', placeholder: 'order_' }),
    field('Correlation id', 'correlationId', { value: q.correlationId || '' }));
  const f = () => Object.fromEntries(new FormData(filters));
  const keep = (e) => {
    const v = f();
    return (!v.stream || e.stream === v.stream) && (!v.type || String(e.type).includes(v.type)) && (!v.correlationId || e.correlationid === v.correlationId);
  };
  const redraw = () => list.replaceChildren(...all.filter(keep).slice(-300).reverse().map((e) => eventLine(e, follow)));
  filters.addEventListener('input', redraw);
  filters.addEventListener('submit', (e) => { e.preventDefault(); redraw(); });

  const chainBox = h('section', { 'aria-labelledby': 'chain-h', id: 'chain' }, h('h2', { id: 'chain-h' }, 'Follow one order'),
    h('p', { class: 'muted' }, 'Choose "follow order" on an event to see its whole chain across services, in order.'));
  let chainES = null;
  function follow(orderId) {
    chainES?.close();
    const items = [];
    const ol = h('ol', { class: 'events', id: 'chain-events', 'aria-live': 'polite' });
    chainBox.replaceChildren(h('h2', { id: 'chain-h', tabindex: '-1' }, `Order ${orderId}`),
      h('p', {}, h('a', { href: `#/orders/${orderId}` }, 'Order details'), state.me?.role === 'admin' ? [' · ', h('a', { href: `#/console/saga/${orderId}` }, 'Saga timeline')] : null),
      ol);
    chainBox.querySelector('h2').focus();
    chainES = new EventSource(`/api/events?orderId=${encodeURIComponent(orderId)}&backlog=2000`);
    chainES.onmessage = (m) => {
      items.push(JSON.parse(m.data));
      items.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
      ol.replaceChildren(...items.map((e) => eventLine(e)));
    };
  }

  const es = new EventSource('/api/events?backlog=300');
  es.onopen = () => { status.textContent = 'Connected: events appear as they happen.'; };
  es.onerror = () => { status.textContent = 'Disconnected; reconnecting (resumes where it stopped)…'; };
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    all.push(e);
    if (all.length > KEEP) all.splice(0, all.length - KEEP);
    if (keep(e)) {
      list.prepend(eventLine(e, follow));
      while (list.children.length > 300) list.lastChild.remove();
    }
  };
  const banner = state.me?.role === 'admin' ? switchesBanner() : null;
  const bt = banner ? setInterval(() => banner.refresh(), 5000) : null;
  onLeave(() => { es.close(); chainES?.close(); if (bt) clearInterval(bt); });
  return [h('h1', {}, 'Live events'), banner,
    h('p', {}, state.me?.role === 'admin' ? 'You are an admin: you see every event of every owner stream, saga commands and replies included.' : 'You see the events about your own account and orders.'),
    filters, status,
    h('div', { class: 'split' }, h('section', { 'aria-label': 'Event stream' }, list), chainBox)];
}
