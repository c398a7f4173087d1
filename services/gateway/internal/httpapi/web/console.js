// console.js — the consistency console (admin): sagas, step timelines, broker lag and
// dead letters, outbox, search drift, health, and the data map. Read-only except the
// operator actions: show / replay / drop a dead letter, re-arm a parked outbox event.
import { api, h, when, problemBox } from './api.js';
import { onLeave } from './app.js';
import { stepsList } from './shop.js';
import { eventLine, switchesBanner } from './live.js';

/** part renders a section at once and fills it when its source answers, so one slow
 * source (search drift, say) never holds the others back. */
function part(title, id, load, render) {
  const body = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const sec = h('section', { 'aria-labelledby': id, id: `${id}-s` }, h('h2', { id }, title), body);
  sec.refresh = async () => {
    try {
      const nodes = [].concat(render(await load())).filter(Boolean);
      body.replaceChildren(...nodes);
    } catch (err) {
      body.replaceChildren(problemBox(err));
    }
    body.removeAttribute('aria-busy');
  };
  sec.refresh();
  return sec;
}

const num = (n) => h('td', { class: 'num' }, String(n ?? '—'));
const table = (cap, heads, rows) => h('table', {}, h('caption', { class: 'sr' }, cap),
  h('thead', {}, h('tr', {}, heads.map((x) => h('th', { class: x.startsWith('#') ? 'num' : null, scope: 'col' }, x.replace(/^#/, ''))))), h('tbody', {}, rows));

function sagas(s) {
  const counts = Object.entries(s.counts || {});
  return [
    table('Sagas by state', ['State', '#Sagas'], counts.map(([k, v]) => h('tr', {}, h('td', {}, k), num(v)))),
    h('p', {}, 'Oldest pending: ', s.oldestPending ? [h('a', { href: `#/console/saga/${s.oldestPending.orderId}` }, s.oldestPending.orderId), ` in ${s.oldestPending.state} since ${when(s.oldestPending.since)}`] : 'none'),
    h('p', { id: 'stuck' }, h('strong', { class: s.stuck ? 'bad' : 'ok' }, `${s.stuck} stuck`), ` (pending longer than ${s.stuckAfterSeconds} s)`),
    s.pending?.length ? table('Pending sagas', ['Order', 'Age', 'Last step', 'Stuck'], s.pending.map((o) => {
      const last = o.steps?.at(-1);
      return h('tr', {}, h('td', {}, h('a', { href: `#/console/saga/${o.id}` }, o.id.slice(0, 8) + '…')), h('td', {}, `${o.ageSeconds} s`),
        h('td', {}, last ? `${last.name} ${last.status} (attempts ${last.attempts})${last.error ? ` — ${last.error}` : ''}` : '—'), h('td', { class: o.stuck ? 'bad' : '' }, o.stuck ? 'yes' : 'no'));
    })) : h('p', { class: 'muted' }, 'No pending saga.'),
  ];
}

function broker(b) {
  const owner = b.streams.filter((s) => !s.dlq);
  const dlq = b.streams.filter((s) => s.dlq);
  return [
    h('h3', {}, 'Consumer lag'),
    table('Consumers', ['Stream', 'Consumer', '#Pending', '#Ack pending', '#Redelivered', 'Last delivered'],
      owner.flatMap((s) => s.consumers.filter((c) => c.durable).map((c) => h('tr', {}, h('td', {}, s.name), h('td', {}, h('code', {}, c.name)), num(c.numPending), num(c.numAckPending), h('td', { class: `num ${c.numRedelivered ? 'bad' : ''}` }, String(c.numRedelivered)), h('td', {}, when(c.lastActive)))))),
    h('h3', {}, 'Streams'),
    table('Streams', ['Stream', '#Messages', '#Last seq', 'Last message', '#Ephemeral readers'], owner.map((s) => h('tr', {}, h('td', {}, s.name), num(s.messages), num(s.lastSeq), h('td', {}, when(s.lastTime)), num(s.consumers.filter((c) => !c.durable).length)))),
    h('h3', {}, 'Dead letters'),
    dlq.length ? table('Dead-letter streams', ['Stream', '#Depth', 'Last letter'], dlq.map((s) => h('tr', {}, h('td', {}, s.name), h('td', { class: `num ${s.messages ? 'bad' : ''}` }, String(s.messages)), h('td', {}, when(s.lastTime))))) : h('p', {}, 'No dead-letter stream yet.'),
    h('p', { class: 'muted' }, 'Show, replay or drop the letters in the "Dead letters and parked events" section below.'),
  ];
}

function drift(d) {
  const bad = (d.missing?.length || 0) + (d.extra?.length || 0) + (d.versionMismatch?.length || 0);
  return [h('p', {}, `Checked ${when(d.checkedAt)}: catalog ${d.catalogProducts} products, index ${d.indexedProducts}. `, h('strong', { class: bad ? 'bad' : 'ok' }, bad ? `${bad} drifted` : 'no drift')),
    bad ? h('ul', {}, [...(d.missing || []).slice(0, 20).map((id) => h('li', {}, `missing ${id}`)), ...(d.extra || []).slice(0, 20).map((id) => h('li', {}, `extra ${id}`)),
      ...(d.versionMismatch || []).slice(0, 20).map((m) => h('li', {}, `stale ${m.id}: catalog v${m.catalogVersion}, index v${m.indexVersion}`))]) : null];
}

function health(hs) {
  return table('Service health', ['Service', 'Engine', 'Status', 'Checks', '#Latency ms'], hs.services.map((s) => h('tr', {}, h('td', {}, s.name), h('td', {}, s.engine),
    h('td', { class: s.status === 'ok' ? 'ok' : 'bad' }, s.status), h('td', {}, s.checks ? Object.entries(s.checks).map(([k, v]) => `${k}: ${v.status}`).join(', ') : '—'), num(s.latencyMs))));
}

function outbox(o) {
  return table('Outbox per owner', ['Owner', 'Metrics', 'Not exposed'], o.owners.map((x) => h('tr', {}, h('td', {}, x.service),
    h('td', {}, Object.keys(x.metrics).length ? h('ul', {}, Object.entries(x.metrics).slice(0, 12).map(([k, v]) => h('li', {}, h('code', {}, k), ` ${v}`))) : '—'),
    h('td', { class: 'muted' }, (x.missing || []).join('; ') || '—'))));
}

const SERVICES = ['users', 'sessions', 'catalog', 'inventory', 'orders', 'payments', 'activity', 'search'];

/** operator is the dead letters and parked outbox events of one chosen service, with the
 * actions its operator API offers. Loaded on demand (not on the 5 s refresh). */
function operator() {
  const status = h('div', { 'aria-live': 'polite', id: 'op-status' });
  const out = h('div', { id: 'op-out' });
  const sel = h('select', { id: 'op-service', name: 'service' }, SERVICES.map((s) => h('option', { value: s }, s)));
  const say = (node) => status.replaceChildren(node);
  const act = async (label, fn) => {
    try {
      await fn();
      say(h('p', { class: 'msg ok' }, label));
    } catch (err) {
      say(problemBox(err));
    }
    await load();
  };
  async function load() {
    const svc = sel.value;
    const base = encodeURIComponent(svc);
    const [dlq, parked] = await Promise.all([
      api('GET', `/api/admin/dlq/${base}`).catch((e) => e),
      api('GET', `/api/admin/outbox/${base}/parked`).catch((e) => e),
    ]);
    const letters = dlq instanceof Error
      ? (dlq.status === 404 ? h('p', { class: 'muted' }, `${svc} consumes no events: no dead letters.`) : problemBox(dlq))
      : dlq.items.length ? table(`Dead letters of ${svc}`, ['#Seq', 'Type', 'Consumer', '#Deliveries', 'Reason', 'Dead-lettered', 'Actions'], dlq.items.map((l) => h('tr', {},
        num(l.seq), h('td', {}, h('code', {}, l.type || l.subject)), h('td', {}, h('code', {}, l.consumer)), num(l.deliveries), h('td', {}, l.reason), h('td', {}, when(l.deadLetteredAt)),
        h('td', {},
          h('button', { type: 'button', 'aria-label': `Show letter ${l.seq}`, onclick: () => show(svc, l.seq) }, 'Show'), ' ',
          h('button', { type: 'button', 'aria-label': `Replay letter ${l.seq}`, onclick: () => act(`Letter ${l.seq} replayed: its handler succeeded and the letter is gone.`, () => api('POST', `/api/admin/dlq/${base}/${l.seq}/replay`)) }, 'Replay'), ' ',
          h('button', { type: 'button', class: 'danger', 'aria-label': `Drop letter ${l.seq}`, onclick: () => {
            if (window.confirm(`Drop dead letter ${l.seq} of ${svc}? Its event is never handled then.`)) act(`Letter ${l.seq} dropped.`, () => api('DELETE', `/api/admin/dlq/${base}/${l.seq}`));
          } }, 'Drop'))))) : h('p', {}, `No dead letter for ${svc}.`);
    const parkedNode = parked instanceof Error
      ? (parked.status === 404 ? h('p', { class: 'muted' }, `${svc} has no outbox.`) : problemBox(parked))
      : parked.items.length ? table(`Parked outbox events of ${svc}`, ['Id', 'Type', 'Aggregate', '#Attempts', 'Last error', 'Parked', 'Action'], parked.items.map((p) => h('tr', {},
        h('td', {}, h('code', {}, p.id)), h('td', {}, h('code', {}, p.type)), h('td', {}, p.aggregate), num(p.attempts), h('td', {}, p.lastError), h('td', {}, when(p.parkedAt)),
        h('td', {}, h('button', { type: 'button', 'aria-label': `Re-arm event ${p.id}`, onclick: () => act(`Event ${p.id} re-armed: the relay publishes it again.`, () => api('POST', `/api/admin/outbox/${base}/parked/${encodeURIComponent(p.id)}/rearm`)) }, 'Re-arm'))))) : h('p', {}, `No parked outbox event for ${svc}.`);
    out.replaceChildren(h('h3', {}, `Dead letters of ${svc}`), letters, h('h3', {}, `Parked outbox events of ${svc}`), parkedNode);
  }
  async function show(svc, seq) {
    try {
      const l = await api('GET', `/api/admin/dlq/${encodeURIComponent(svc)}/${seq}`);
      say(h('div', {}, h('h3', {}, `Letter ${seq}`), h('pre', { tabindex: '0', 'aria-label': `Letter ${seq} as JSON` }, JSON.stringify(l, null, 2))));
    } catch (err) {
      say(problemBox(err));
    }
  }
  const form = h('form', { class: 'inline', onsubmit: (ev) => { ev.preventDefault(); status.replaceChildren(); load(); } },
    h('label', { for: 'op-service' }, 'Service '), sel, ' ', h('button', { type: 'submit' }, 'Load'));
  return h('section', { 'aria-labelledby': 'c-op', id: 'c-op-s' }, h('h2', { id: 'c-op' }, 'Dead letters and parked events'),
    h('p', { class: 'muted' }, 'Replay runs the letter through its consumer\'s handler in the owning service; drop deletes it (asks first); re-arm lets the relay publish a parked event again.'),
    form, status, out);
}

export async function overview() {
  const secs = [
    part('Sagas', 'c-sagas', () => api('GET', '/api/admin/sagas'), sagas),
    part('Broker: consumer lag, streams, dead letters', 'c-broker', () => api('GET', '/api/admin/broker'), broker),
    part('Outbox', 'c-outbox', () => api('GET', '/api/admin/outbox'), outbox),
    part('Search drift', 'c-drift', () => api('GET', '/api/admin/drift'), drift),
    part('Health', 'c-health', () => api('GET', '/api/admin/health'), health),
  ];
  const wrap = h('div', { id: 'console' }, secs, operator());
  const banner = switchesBanner();
  const t = setInterval(() => { secs.forEach((s) => s.refresh()); banner.refresh(); }, 5000);
  onLeave(() => clearInterval(t));
  return [h('h1', {}, 'Consistency console'), banner, h('p', {}, h('a', { href: '#/console/datamap' }, 'Data map'), ' · refreshes every 5 s'), wrap];
}

export async function saga(id) {
  const box = h('div', {});
  async function load() {
    const o = await api('GET', `/api/orders/${encodeURIComponent(id)}`);
    box.replaceChildren(h('p', {}, 'Status: ', h('strong', { class: `status-${o.status}`, id: 'saga-status' }, o.status), o.cancelReason ? ` — ${o.cancelReason}` : '', ` · created ${when(o.createdAt)} · updated ${when(o.updatedAt)}`),
      stepsList(o.steps));
    return o;
  }
  await load();
  const feed = h('ol', { class: 'events', 'aria-label': 'Events of this saga' });
  const es = new EventSource(`/api/events?orderId=${encodeURIComponent(id)}&backlog=2000`);
  const items = [];
  es.onmessage = (m) => {
    items.push(JSON.parse(m.data));
    items.sort((a, b) => (a.time < b.time ? -1 : 1));
    feed.replaceChildren(...items.map((e) => eventLine(e)));
    load().catch(() => {});
  };
  onLeave(() => es.close());
  return [h('h1', {}, `Saga ${id.slice(0, 8)}…`), h('p', {}, h('a', { href: '#/console' }, 'Back to the console')), h('h2', {}, 'Step timeline'), box, h('h2', {}, 'Commands, replies and events'), feed];
}

export async function datamap() {
  const m = await api('GET', '/api/admin/datamap');
  return [h('h1', {}, 'Data map'),
    h('p', {}, 'Each service owns its data in its own engine; they stay in sync only through the events below.'),
    m.degraded ? h('p', { class: 'msg warn' }, `Not answering: ${m.degraded.join(', ')}`) : null,
    h('ul', { class: 'tiles' }, m.services.map((s) => h('li', { class: `tile own-${s.service}` },
      h('h2', { class: `t-${s.service}` }, s.service), h('p', {}, h('span', { class: 'eng' }, s.engine), ' ', h('span', { class: s.status === 'ok' ? 'ok' : 'bad' }, s.status)),
      h('p', {}, 'Owns: ', s.owns),
      h('dl', {}, Object.entries(s.records).map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
      s.notExposed?.length ? h('p', { class: 'muted' }, s.notExposed.map((x) => (x.startsWith('not counted') ? x : `not exposed: ${x}`)).join('; ')) : null,
      s.lastEvent ? h('p', {}, 'Last event: ', h('code', {}, String(s.lastEvent.type).replace(/^polyshop\./, '')), ` ${when(s.lastEvent.time)}`) : s.stream ? h('p', { class: 'muted' }, 'No event yet') : h('p', { class: 'muted' }, 'Read model: consumes events, publishes none')))),
  ];
}
