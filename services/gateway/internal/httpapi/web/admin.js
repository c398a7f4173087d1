// admin.js — product create / edit / delete, restock, and the lab fault switches.
import { api, h, money, field, onForm } from './api.js';
import { flash, go } from './app.js';
import { switchesBanner, PATTERNS as PATTERN_CHOICES } from './live.js';

async function categoryOptions(value) {
  const cats = (await api('GET', '/api/categories')).categories || [];
  return { type: 'select', value, options: cats.map((c) => ({ value: c.name, label: c.title || c.name })), required: true };
}

function parseAttributes(text) {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw { message: 'Attributes must be a JSON object.', fields: [{ field: 'attributes', reason: 'not valid JSON' }] };
  }
}

export async function products(q) {
  const form = h('form', { class: 'stack', 'aria-label': 'New product' },
    field('Name', 'name', { required: true }),
    field('Description', 'description', { type: 'textarea', rows: 3 }),
    field('Category', 'category', await categoryOptions('')),
    h('div', { class: 'row' }, field('Price (cents)', 'price.amount', { type: 'number', min: 0, required: true }), field('Currency', 'price.currency', { value: 'EUR', maxlength: 3, required: true })),
    field('Attributes (JSON object; each category requires some, see GET /api/categories)', 'attributes', { type: 'textarea', rows: 4, value: '{}' }),
    field('Initial stock', 'initialStock', { type: 'number', min: 0, value: 10, required: true }),
    h('button', { type: 'submit' }, 'Create product'));
  onForm(form, async (v) => {
    const p = await api('POST', '/api/products', {
      name: v.name, description: v.description, category: v.category,
      price: { amount: Number(v['price.amount']), currency: v['price.currency'] },
      attributes: parseAttributes(v.attributes), initialStock: Number(v.initialStock),
    });
    flash(`Created ${p.name}. Inventory creates its stock from the catalog's event.`);
    go(`#/admin/products/${p.id}`);
  });
  const find = h('form', { class: 'row', role: 'search', 'aria-label': 'Find a product to edit' }, field('Find product', 'q', { type: 'search', value: q.q || '' }), h('button', { type: 'submit', class: 'secondary' }, 'Find'));
  find.addEventListener('submit', (e) => { e.preventDefault(); go(`#/admin/products?q=${encodeURIComponent(new FormData(find).get('q'))}`); });
  const res = await api('GET', `/api/search?limit=20${q.q ? `&q=${encodeURIComponent(q.q)}` : ''}`);
  return [h('h1', {}, 'Products (admin)'), find,
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Category'), h('th', { class: 'num' }, 'Price'), h('th', { class: 'num' }, 'Available'))),
      h('tbody', {}, (res.hits || []).map((p) => h('tr', {}, h('td', {}, h('a', { href: `#/admin/products/${p.id}` }, p.name)), h('td', {}, p.category), h('td', { class: 'num' }, money(p.price)), h('td', { class: 'num' }, p.available ?? '—'))))),
    h('h2', {}, 'New product'), form];
}

export async function editProduct(id) {
  const p = await api('GET', `/api/products/${encodeURIComponent(id)}`);
  const etag = p._etag;
  const form = h('form', { class: 'stack', 'aria-label': 'Edit product' },
    field('Name', 'name', { value: p.name, required: true }),
    field('Description', 'description', { type: 'textarea', rows: 3, value: p.description }),
    field('Category', 'category', await categoryOptions(p.category)),
    h('div', { class: 'row' }, field('Price (cents)', 'price.amount', { type: 'number', min: 0, value: p.price?.amount }), field('Currency', 'price.currency', { value: p.price?.currency, maxlength: 3 })),
    field('Attributes (JSON object)', 'attributes', { type: 'textarea', rows: 5, value: JSON.stringify(p.attributes || {}, null, 1) }),
    h('button', { type: 'submit' }, 'Save changes'));
  onForm(form, async (v) => {
    await api('PATCH', `/api/products/${id}`, {
      name: v.name, description: v.description, category: v.category,
      price: { amount: Number(v['price.amount']), currency: v['price.currency'] }, attributes: parseAttributes(v.attributes),
    }, etag ? { 'If-Match': etag } : {});
    flash('Saved. Search catches up from the catalog event.');
    go(`#/admin/products/${id}?saved=${Date.now()}`);
  });
  const av = p.availability;
  const restock = h('form', { class: 'row', 'aria-label': 'Restock' },
    field('Available units', 'available', { type: 'number', min: 0, value: av?.available ?? 0, required: true }),
    h('button', { type: 'submit' }, 'Set stock'));
  onForm(restock, async (v) => {
    if (!av) throw { message: 'Inventory has no stock record for this product (yet): reload in a moment.', fields: [] };
    const s = await api('PUT', `/api/products/${id}/stock`, { available: Number(v.available), version: av.version });
    flash(`Stock set to ${s.available}.`);
    go(`#/admin/products/${id}?v=${s.version}`);
  });
  const del = h('form', { 'aria-label': 'Delete product' }, h('button', { type: 'submit', class: 'danger' }, `Delete ${p.name}`));
  onForm(del, async () => {
    if (!confirm(`Delete ${p.name}?`)) return;
    await api('DELETE', `/api/products/${id}`, undefined, etag ? { 'If-Match': etag } : {});
    flash(`Deleted ${p.name}.`);
    go('#/admin/products');
  });
  return [h('h1', {}, `Edit ${p.name}`), h('p', {}, h('a', { href: `#/product/${id}` }, 'View as a customer'), ` · version ${p.version}`),
    form, h('h2', {}, 'Stock'),
    h('p', {}, av ? `${av.available} available, ${av.reserved} reserved (stock version ${av.version}).` : p.degraded ? 'Inventory did not answer (degraded).' : 'No stock record yet.'),
    restock, h('h2', {}, 'Delete'), del];
}

export async function faults() {
  const f = await api('GET', '/api/admin/faults');
  const pay = f.payments || {}, inv = f.inventory || {}, saga = f.saga || {};
  const form = h('form', { class: 'stack', 'aria-label': 'Fault switches' },
    f.degraded?.length ? h('p', { class: 'msg warn' }, `Not answering: ${f.degraded.join(', ')}`) : null,
    h('fieldset', {}, h('legend', {}, 'Payments'),
      field('Decline rate (0 to 1)', 'payments.declineRate', { type: 'number', step: '0.05', min: 0, max: 1, value: pay.declineRate ?? 0 }),
      field('Error rate (0 to 1, transient)', 'payments.errorRate', { type: 'number', step: '0.05', min: 0, max: 1, value: pay.errorRate ?? 0 }),
      field('Latency (ms)', 'payments.latencyMs', { type: 'number', min: 0, value: pay.latencyMs ?? 0 }),
      field('Payments down', 'payments.down', { type: 'checkbox', value: 'true', checked: !!pay.down })),
    h('fieldset', {}, h('legend', {}, 'Inventory'),
      field('Latency (ms)', 'inventory.latencyMs', { type: 'number', min: 0, value: inv.latencyMs ?? 0 }),
      field('Inventory down', 'inventory.down', { type: 'checkbox', value: 'true', checked: !!inv.down })),
    h('fieldset', {}, h('legend', {}, 'Saga (orders)'),
      field('Step timeout (ms)', 'saga.stepTimeoutMs', { type: 'number', min: 1, value: saga.stepTimeoutMs ?? '' })),
    h('fieldset', {}, h('legend', {}, 'Patterns (labs: off means the safe default)'),
      Object.entries(PATTERN_CHOICES).map(([k, values]) => field(k, `patterns.${k}`, { type: 'select', options: values, value: f.patterns?.[k] ?? values[0] })),
      field('Duplicates (each event and command published 1 to 3 times)', 'duplicates', { type: 'number', min: 1, max: 3, value: f.duplicates ?? 1 })),
    h('fieldset', {}, h('legend', {}, 'Armed crash points'),
      Object.keys(f.crashPoints || {}).length
        ? h('ul', {}, Object.entries(f.crashPoints).map(([k, p]) => h('li', {}, h('code', {}, k), ` probability ${p}`)))
        : h('p', { class: 'muted' }, 'None armed (arm one with PUT /api/admin/faults {"crashPoints": {...}}).')),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Apply switches')));
  onForm(form, async (v) => {
    const num = (x) => (x === '' || x === undefined ? undefined : Number(x));
    const body = {
      payments: { declineRate: num(v['payments.declineRate']), errorRate: num(v['payments.errorRate']), latencyMs: num(v['payments.latencyMs']), down: v['payments.down'] === 'true' },
      inventory: { latencyMs: num(v['inventory.latencyMs']), down: v['inventory.down'] === 'true' },
    };
    if (num(v['saga.stepTimeoutMs']) !== undefined) body.saga = { stepTimeoutMs: num(v['saga.stepTimeoutMs']) };
    body.patterns = Object.fromEntries(Object.keys(PATTERN_CHOICES).filter((k) => v[`patterns.${k}`] && v[`patterns.${k}`] !== (f.patterns?.[k] ?? PATTERN_CHOICES[k][0])).map((k) => [k, v[`patterns.${k}`]]));
    if (num(v.duplicates) !== undefined) body.duplicates = num(v.duplicates);
    await api('PUT', '/api/admin/faults', JSON.parse(JSON.stringify(body)));
    flash('Fault switches applied; they are stored by their owners and survive restarts.');
    go(`#/admin/faults?t=${Date.now()}`);
  });
  const clear = h('form', { 'aria-label': 'Clear faults' }, h('button', { type: 'submit', class: 'secondary' }, 'Clear every switch'));
  onForm(clear, async () => {
    await api('DELETE', '/api/admin/faults');
    flash('Every fault switch is cleared.');
    go(`#/admin/faults?t=${Date.now()}`);
  });
  return [h('h1', {}, 'Fault switches'), switchesBanner(), h('p', {}, 'Lab switches for the saga: decline payments and watch orders cancel with their compensation; pattern switches turn a safe design off for a lab (./scripts/lab).'), form, clear];
}
