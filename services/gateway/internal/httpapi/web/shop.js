// shop.js — the customer-facing views: search, browse, product, cart and checkout, orders
// with the saga shown live, account and activity.
import { api, h, money, when, field, onForm, problemBox } from './api.js';
import { state, cart, flash, go, refreshMe, onLeave } from './app.js';
import { eventLine } from './live.js';

let categoriesCache = null;
async function categories() {
  if (!categoriesCache) categoriesCache = (await api('GET', '/api/categories')).categories || [];
  return categoriesCache;
}

function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Highlights come as text with <em> tags; only those tags are honoured, as elements. */
function highlighted(text) {
  const out = [];
  for (const [i, part] of String(text).split(/<\/?em>/).entries()) out.push(i % 2 ? h('mark', {}, part) : part);
  return out;
}

function productCard(p) {
  const stock = p.inStock === undefined ? null : p.inStock ? h('span', { class: 'ok' }, `In stock${p.available !== undefined ? ` (${p.available})` : ''}`) : h('span', { class: 'bad' }, 'Out of stock');
  return h('li', { class: 'card' },
    h('h3', {}, h('a', { href: `#/product/${p.id}` }, p.highlights?.name ? highlighted(p.highlights.name[0]) : p.name)),
    h('span', { class: 'muted' }, p.category),
    h('span', { class: 'price' }, money(p.price)),
    stock);
}

export async function search(q) {
  const params = { q: q.q, category: q.category, minPrice: q.minPrice, maxPrice: q.maxPrice, inStock: q.inStock, cursor: q.cursor, limit: 24 };
  const form = h('form', { role: 'search', class: 'row', 'aria-label': 'Search products' },
    field('Search products', 'q', { type: 'search', value: q.q || '', placeholder: 'e.g. coffee' }),
    h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(`#/search${qs({ ...q, q: new FormData(form).get('q'), cursor: '' })}`);
  });
  let res;
  try {
    res = await api('GET', `/api/search${qs(params)}`);
  } catch (err) {
    return [h('h1', {}, 'Search'), form, problemBox(err)];
  }
  const facets = h('div', { class: 'facets' });
  const cats = res.facets?.category || [];
  facets.append(h('fieldset', {}, h('legend', {}, 'Category'),
    h('ul', { class: 'plain' },
      h('li', {}, h('a', { href: `#/search${qs({ ...q, category: '', cursor: '' })}`, 'aria-current': q.category ? null : 'true' }, 'All categories')),
      cats.map((c) => h('li', {}, h('a', { href: `#/search${qs({ ...q, category: c.value, cursor: '' })}`, 'aria-current': q.category === c.value ? 'true' : null, 'data-facet': c.value }, `${c.value} (${c.count})`))))));
  facets.append(h('fieldset', {}, h('legend', {}, 'Price'),
    h('ul', {}, (res.facets?.price || []).map((b) => h('li', {}, h('a', { href: `#/search${qs({ ...q, minPrice: b.from ?? '', maxPrice: b.to !== undefined ? b.to - 1 : '', cursor: '' })}` }, `${b.key} (${b.count})`))))));
  const filt = h('form', { class: 'stack', 'aria-label': 'Filters' },
    field('Min price (cents)', 'minPrice', { type: 'number', min: 0, value: q.minPrice || '' }),
    field('Max price (cents)', 'maxPrice', { type: 'number', min: 0, value: q.maxPrice || '' }),
    field('In stock only', 'inStock', { type: 'checkbox', value: 'true', checked: q.inStock === 'true' }),
    h('button', { type: 'submit', class: 'secondary' }, 'Apply filters'));
  filt.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(filt);
    go(`#/search${qs({ ...q, minPrice: f.get('minPrice'), maxPrice: f.get('maxPrice'), inStock: f.get('inStock') ? 'true' : '', cursor: '' })}`);
  });
  facets.append(h('fieldset', {}, h('legend', {}, 'Filters'), filt));
  const hits = res.hits || [];
  const pager = h('div', { class: 'pager' },
    q.cursor ? h('a', { href: `#/search${qs({ ...q, cursor: '' })}` }, 'First page') : null,
    res.nextCursor ? h('a', { href: `#/search${qs({ ...q, cursor: res.nextCursor })}`, rel: 'next' }, 'Next page') : null);
  return [h('h1', {}, q.q ? `Search: ${q.q}` : 'Search'), form,
    h('div', { class: 'layout' }, facets,
      h('section', { 'aria-label': 'Results' },
        h('p', { class: 'muted', id: 'hits-count' }, `${res.total} product${res.total === 1 ? '' : 's'}${q.category ? ` in ${q.category}` : ''}`),
        hits.length ? h('ul', { class: 'cards' }, hits.map(productCard)) : h('p', {}, 'Nothing found. Try fewer words or other filters.'),
        pager))];
}

export async function browse(q) {
  const cats = await categories();
  const sel = field('Category', 'category', { type: 'select', value: q.category || '', options: [{ value: '', label: 'All' }, ...cats.map((c) => ({ value: c.name, label: c.title || c.name }))] });
  const form = h('form', { class: 'row', 'aria-label': 'Choose a category' }, sel, h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go(`#/browse${qs({ category: new FormData(form).get('category') })}`); });
  let page;
  try {
    page = await api('GET', `/api/products${qs({ category: q.category, cursor: q.cursor, limit: 24 })}`);
  } catch (err) {
    return [h('h1', {}, 'Browse'), form, problemBox(err)];
  }
  const prev = (q.trail || '').split('~').filter(Boolean);
  return [h('h1', {}, q.category ? `Browse: ${q.category}` : 'Browse all products'), form,
    h('ul', { class: 'cards' }, (page.items || []).map(productCard)),
    h('div', { class: 'pager' },
      q.cursor ? h('a', { href: `#/browse${qs({ category: q.category, cursor: prev.at(-1) || '', trail: prev.slice(0, -1).join('~') })}` }, 'Previous page') : null,
      page.nextCursor ? h('a', { href: `#/browse${qs({ category: q.category, cursor: page.nextCursor, trail: [...prev, q.cursor || ''].join('~') })}`, rel: 'next' }, 'Next page') : null)];
}

export async function product(id) {
  const p = await api('GET', `/api/products/${encodeURIComponent(id)}`);
  const avail = p.availability;
  const qty = field('Quantity', 'quantity', { type: 'number', min: 1, max: 100, value: 1, required: true });
  const form = h('form', { class: 'row', 'aria-label': 'Add to cart' }, qty, h('button', { type: 'submit' }, 'Add to cart'));
  onForm(form, async (v) => {
    const n = Number(v.quantity);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw { message: 'Quantity must be 1 to 100.', fields: [{ field: 'quantity', reason: 'must be 1 to 100' }] };
    cart.add(p, n);
    flash(`Added ${n} × ${p.name} to the cart.`);
  });
  return [h('h1', {}, p.name),
    h('p', { class: 'muted' }, `${p.category} · product ${p.id}`),
    h('p', { class: 'price' }, money(p.price)),
    h('p', { id: 'availability' }, avail ? [h('strong', { class: avail.available > 0 ? 'ok' : 'bad' }, avail.available > 0 ? `${avail.available} available` : 'Out of stock'), ` · ${avail.reserved} reserved by pending orders`]
      : p.degraded?.includes('inventory') ? h('span', { class: 'msg warn' }, 'Availability is unknown right now: the inventory service did not answer (degraded).') : 'Availability not recorded yet.'),
    h('p', {}, p.description),
    p.attributes && Object.keys(p.attributes).length ? h('table', {}, h('caption', { class: 'sr' }, 'Attributes'), h('tbody', {}, Object.entries(p.attributes).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)))))) : null,
    form,
    state.me?.role === 'admin' ? h('p', {}, h('a', { href: `#/admin/products/${p.id}` }, 'Edit, restock or delete (admin)')) : null];
}

export function cartPage() {
  const items = cart.items();
  if (!items.length) return [h('h1', {}, 'Cart'), h('p', {}, 'Your cart is empty. ', h('a', { href: '#/search' }, 'Find something'), '.')];
  const rows = items.map((it, i) => {
    const q = h('input', { type: 'number', min: 1, max: 100, value: it.quantity, id: `q${i}`, 'aria-label': `Quantity of ${it.name}` });
    q.addEventListener('change', () => {
      const all = cart.items();
      all[i].quantity = Math.max(1, Math.min(100, Number(q.value) || 1));
      cart.save(all);
      go('#/cart');
    });
    return h('tr', {}, h('td', {}, h('a', { href: `#/product/${it.productId}` }, it.name)), h('td', {}, q),
      h('td', { class: 'num' }, money(it.price)),
      h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => { const all = cart.items(); all.splice(i, 1); cart.save(all); go('#/cart'); } }, `Remove ${it.name}`)));
  });
  const cur = items[0].price?.currency;
  const total = items.every((i) => i.price?.currency === cur) ? money({ amount: items.reduce((s, i) => s + i.price.amount * i.quantity, 0), currency: cur }) : 'mixed currencies';
  const form = h('form', { 'aria-label': 'Checkout' }, h('button', { type: 'submit' }, 'Place order'));
  onForm(form, async () => {
    if (!state.me) { go('#/login?next=cart'); return; }
    // One key per checkout attempt, kept until it succeeds: a retry places the order once.
    let key = localStorage.getItem('polyshop.checkoutKey');
    if (!key) { key = crypto.randomUUID(); localStorage.setItem('polyshop.checkoutKey', key); }
    const ref = await api('POST', '/api/orders', { items: cart.items().map((i) => ({ productId: i.productId, quantity: i.quantity })) }, { 'Idempotency-Key': key });
    cart.clear();
    go(`#/orders/${ref.id}`);
  });
  return [h('h1', {}, 'Cart'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', {}, 'Quantity'), h('th', { class: 'num' }, 'Unit price'), h('th', {}, h('span', { class: 'sr' }, 'Actions')))), h('tbody', {}, rows)),
    h('p', {}, 'Total: ', h('strong', {}, total)),
    state.me ? null : h('p', { class: 'msg warn' }, 'Log in to place the order; your cart stays in this browser.'),
    form];
}

export function login(q = {}) {
  const form = h('form', { class: 'stack', 'aria-label': 'Log in' },
    field('Email', 'email', { type: 'email', autocomplete: 'username', required: true }),
    field('Password', 'password', { type: 'password', autocomplete: 'current-password', required: true }),
    h('button', { type: 'submit' }, 'Log in'));
  onForm(form, async (v) => {
    await api('POST', '/api/sessions', { email: v.email, password: v.password });
    await refreshMe();
    flash(`Welcome, ${state.me?.name || v.email}.`);
    go(location.hash.includes('next=cart') ? '#/cart' : '#/search');
  });
  return [h('h1', {}, 'Log in'), form, h('p', {}, 'No account yet? ', h('a', { href: '#/signup' }, 'Sign up'))];
}

export function signup() {
  const form = h('form', { class: 'stack', 'aria-label': 'Sign up' },
    field('Name', 'name', { autocomplete: 'name', required: true }),
    field('Email', 'email', { type: 'email', autocomplete: 'email', required: true }),
    field('Password', 'password', { type: 'password', autocomplete: 'new-password', required: true }),
    h('button', { type: 'submit' }, 'Sign up'));
  onForm(form, async (v) => {
    await api('POST', '/api/users', { name: v.name, email: v.email, password: v.password });
    await api('POST', '/api/sessions', { email: v.email, password: v.password });
    await refreshMe();
    flash('Your account is ready. Add a shipping address before ordering.');
    go('#/account');
  });
  return [h('h1', {}, 'Sign up'), form];
}

export async function account() {
  const me = await api('GET', '/api/me');
  const a = me.address || {};
  const form = h('form', { class: 'stack', 'aria-label': 'Shipping address' },
    field('Street', 'street', { value: a.street || '', autocomplete: 'street-address', required: true }),
    field('City', 'city', { value: a.city || '', autocomplete: 'address-level2', required: true }),
    field('Postal code', 'postalCode', { value: a.postalCode || '', autocomplete: 'postal-code', required: true }),
    field('Country (2 letters)', 'country', { value: a.country || '', autocomplete: 'country', maxlength: 2, required: true }),
    h('button', { type: 'submit' }, 'Save address'));
  onForm(form, async (v) => {
    await api('PUT', '/api/me/address', v);
    flash('Address saved.');
  });
  const del = h('form', { 'aria-label': 'Delete account' },
    field('Type DELETE to confirm', 'confirm', { required: true, autocomplete: 'off' }),
    h('button', { type: 'submit', class: 'danger' }, 'Delete my account'));
  onForm(del, async (v) => {
    if (v.confirm !== 'DELETE') throw { message: 'Type DELETE to confirm.', fields: [{ field: 'confirm', reason: 'must be DELETE' }] };
    await api('DELETE', '/api/me');
    state.me = null;
    await refreshMe();
    flash('Your account is deleted. Your sessions are revoked and your data removed by each service (choreography).');
    go('#/search');
  });
  return [h('h1', {}, 'Account'),
    h('dl', {}, h('dt', {}, 'Name'), h('dd', {}, me.name), h('dt', {}, 'Email'), h('dd', {}, me.email), h('dt', {}, 'Role'), h('dd', {}, me.role)),
    h('h2', {}, 'Shipping address'), form, h('h2', {}, 'Delete account'), del];
}

export async function activity(q) {
  const page = await api('GET', `/api/me/activity${qs({ limit: 25, cursor: q.cursor })}`);
  return [h('h1', {}, 'Your activity'),
    page.items?.length ? h('ol', {}, page.items.map((e) => h('li', {}, h('strong', {}, e.summary), ' ', h('span', { class: 'muted' }, `${when(e.occurredAt)} · ${e.type}`)))) : h('p', {}, 'Nothing yet.'),
    h('div', { class: 'pager' }, page.nextCursor ? h('a', { href: `#/activity${qs({ cursor: page.nextCursor })}`, rel: 'next' }, 'Older') : null)];
}

export async function orders(q) {
  const page = await api('GET', `/api/orders${qs({ status: q.status, cursor: q.cursor, limit: 20 })}`);
  const sel = field('Status', 'status', { type: 'select', value: q.status || '', options: [{ value: '', label: 'All' }, 'PENDING', 'CONFIRMED', 'CANCELLED'] });
  const form = h('form', { class: 'row', 'aria-label': 'Filter orders' }, sel, h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go(`#/orders${qs({ status: new FormData(form).get('status') })}`); });
  return [h('h1', {}, 'Your orders'), form,
    page.items?.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Order'), h('th', {}, 'Placed'), h('th', {}, 'Status'), h('th', { class: 'num' }, 'Total'))),
      h('tbody', {}, page.items.map((o) => h('tr', {}, h('td', {}, h('a', { href: `#/orders/${o.id}` }, o.id.slice(0, 8) + '…')), h('td', {}, when(o.createdAt)),
        h('td', {}, h('span', { class: `badge status-${o.status}` }, o.status), o.cancelReason ? ` ${o.cancelReason}` : ''), h('td', { class: 'num' }, money(o.total))))))
      : h('p', {}, 'No orders yet.'),
    h('div', { class: 'pager' }, page.nextCursor ? h('a', { href: `#/orders${qs({ status: q.status, cursor: page.nextCursor })}`, rel: 'next' }, 'Older') : null)];
}

const STEP_LABEL = { reserve: 'Reserve stock (inventory)', charge: 'Charge payment (payments)', commit: 'Commit stock (inventory)', refund: 'Refund (payments)', release: 'Release stock (inventory)' };

/** stepsList renders the saga's steps from orders: each with status, attempts, last error. */
export function stepsList(steps) {
  if (!steps?.length) return h('p', { class: 'muted' }, 'No step yet.');
  return h('ol', { class: 'steps', 'aria-label': 'Saga steps' }, steps.map((s) => {
    const st = String(s.status || '').toLowerCase();
    const cls = /fail|declin|reject|timed|timeout|error/.test(st) ? 'failed' : /done|ok|succe|complet|reserved|charged|committed|released|refunded/.test(st) ? 'done' : 'active';
    return h('li', { class: cls, 'data-step': s.name },
      h('strong', {}, STEP_LABEL[s.name] || s.name), ' — ', h('span', { class: 'step-status' }, s.status),
      h('span', { class: 'muted' }, ` · ${when(s.at)} · attempts ${s.attempts ?? 0}`),
      s.error ? h('div', { class: 'bad' }, `last error: ${s.error}`) : null);
  }));
}

export async function order(id) {
  const head = h('div', {});
  const steps = h('section', { 'aria-labelledby': 'steps-h' }, h('h2', { id: 'steps-h' }, 'Saga progress'), h('div', { id: 'steps' }));
  const feed = h('ol', { class: 'events', id: 'order-events', 'aria-live': 'polite', 'aria-label': 'Events of this order' });
  let final = false;
  async function load() {
    const o = await api('GET', `/api/orders/${encodeURIComponent(id)}`);
    final = o.status !== 'PENDING';
    head.replaceChildren(...[
      h('p', {}, 'Status: ', h('strong', { class: `badge status-${o.status}`, id: 'order-status' }, o.status),
        o.cancelReason ? h('span', { id: 'cancel-reason' }, ` — reason: ${o.cancelReason}`) : null,
        final ? null : h('span', { class: 'muted' }, ' (updating live)')),
      o.degraded?.length ? h('p', { class: 'msg warn', id: 'degraded' }, `Parts of this order are missing because these services did not answer in time: ${o.degraded.join(', ')} (degraded).`) : null,
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', { class: 'num' }, 'Quantity'), h('th', { class: 'num' }, 'Unit price'))),
        h('tbody', {}, (o.items || []).map((it) => h('tr', {}, h('td', {}, h('a', { href: `#/product/${it.productId}` }, it.name || it.product?.name || it.productId)), h('td', { class: 'num' }, it.quantity), h('td', { class: 'num' }, money(it.unitPrice)))))),
      h('p', {}, 'Total: ', h('strong', {}, money(o.total)), ` · placed ${when(o.createdAt)}`),
      h('dl', {},
        h('dt', {}, 'Customer'), h('dd', {}, o.customer ? `${o.customer.name} <${o.customer.email}>` : o.degraded?.includes('users') ? 'unavailable (users service degraded)' : '—'),
        h('dt', {}, 'Ship to'), h('dd', {}, o.shippingAddress ? `${o.shippingAddress.street}, ${o.shippingAddress.postalCode} ${o.shippingAddress.city}, ${o.shippingAddress.country}` : '—'),
        h('dt', {}, 'Payment'), h('dd', { id: 'payment' }, o.payment ? `${o.payment.status} ${money(o.payment.amount)}${o.payment.refunded ? ` · refunded ${money(o.payment.refunded)}` : ''}${o.payment.reason ? ` · ${o.payment.reason}` : ''}` : o.degraded?.includes('payments') ? 'unavailable (payments service degraded)' : 'none'))].filter(Boolean));
    steps.querySelector('#steps').replaceChildren(stepsList(o.steps));
    return o;
  }
  await load();
  // Live: the order's own events from GET /api/events, and the order re-read on each one.
  let pending = null;
  const es = new EventSource(`/api/events?orderId=${encodeURIComponent(id)}&backlog=500`);
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    feed.append(eventLine(e));
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(() => {}), 150);
  };
  const poll = setInterval(() => { if (!final) load().catch(() => {}); }, 3000);
  onLeave(() => { es.close(); clearInterval(poll); clearTimeout(pending); });
  return [h('h1', {}, `Order ${id.slice(0, 8)}…`), head, steps,
    h('section', { 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'Events across services, as they happen'), feed)];
}
