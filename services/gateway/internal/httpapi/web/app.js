// app.js — session, cart, navigation and the hash router of the Polyshop UI.
import { api, h, problemBox } from './api.js';
import * as shop from './shop.js';
import * as admin from './admin.js';
import * as live from './live.js';
import * as console_ from './console.js';

/** state is the signed-in user (from GET /api/me) or null. */
export const state = { me: null };

export async function refreshMe() {
  try {
    state.me = await api('GET', '/api/me');
  } catch {
    state.me = null;
  }
  renderNav();
}

/** The cart lives in the browser (localStorage), never on the server. */
export const cart = {
  items() {
    try { return JSON.parse(localStorage.getItem('polyshop.cart') || '[]'); } catch { return []; }
  },
  save(items) {
    localStorage.setItem('polyshop.cart', JSON.stringify(items));
    renderNav();
  },
  add(p, qty) {
    const items = cart.items();
    const line = items.find((i) => i.productId === p.id);
    if (line) line.quantity = Math.min(100, line.quantity + qty);
    else items.push({ productId: p.id, name: p.name, price: p.price, quantity: qty });
    cart.save(items);
  },
  clear() { cart.save([]); localStorage.removeItem('polyshop.checkoutKey'); },
  count() { return cart.items().reduce((n, i) => n + i.quantity, 0); },
};

export function flash(text, kind = 'ok') {
  const box = document.getElementById('flash');
  box.replaceChildren(h('div', { class: `msg ${kind}` }, text));
  clearTimeout(flash.t);
  flash.t = setTimeout(() => box.replaceChildren(), 6000);
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function renderNav() {
  const me = state.me;
  const links = [['#/search', 'Search'], ['#/browse', 'Browse'], [`#/cart`, `Cart (${cart.count()})`]];
  if (me) links.push(['#/orders', 'Orders'], ['#/activity', 'Activity'], ['#/live', 'Live events'], ['#/account', 'Account']);
  if (me?.role === 'admin') links.push(['#/admin/products', 'Products (admin)'], ['#/admin/faults', 'Faults'], ['#/console', 'Console']);
  if (!me) links.push(['#/login', 'Log in'], ['#/signup', 'Sign up']);
  const cur = location.hash.split('?')[0] || '#/search';
  const ul = h('ul', {}, links.map(([href, text]) => h('li', {}, h('a', { href, 'aria-current': cur.startsWith(href) ? 'page' : null }, text))));
  if (me) {
    ul.append(h('li', {}, h('button', { class: 'secondary', type: 'button', onclick: logout }, `Log out ${me.name || me.email}`)));
  }
  document.getElementById('nav').replaceChildren(ul);
}

async function logout() {
  try {
    await api('DELETE', '/api/sessions/current');
  } catch (err) {
    if (err.status !== 401) { flash(err.message, 'error'); return; }
  }
  state.me = null;
  renderNav();
  flash('You are logged out.');
  go('#/search');
}

const routes = [
  [/^#?\/?$/, () => shop.search({})],
  [/^#\/search$/, (m, q) => shop.search(q)],
  [/^#\/browse$/, (m, q) => shop.browse(q)],
  [/^#\/product\/([^/]+)$/, (m) => shop.product(m[1])],
  [/^#\/cart$/, () => shop.cartPage()],
  [/^#\/login$/, () => shop.login()],
  [/^#\/signup$/, () => shop.signup()],
  [/^#\/account$/, () => shop.account(), 'user'],
  [/^#\/activity$/, (m, q) => shop.activity(q), 'user'],
  [/^#\/orders$/, (m, q) => shop.orders(q), 'user'],
  [/^#\/orders\/([^/]+)$/, (m) => shop.order(m[1]), 'user'],
  [/^#\/live$/, (m, q) => live.view(q), 'user'],
  [/^#\/admin\/products$/, (m, q) => admin.products(q), 'admin'],
  [/^#\/admin\/products\/([^/]+)$/, (m) => admin.editProduct(m[1]), 'admin'],
  [/^#\/admin\/faults$/, () => admin.faults(), 'admin'],
  [/^#\/console$/, () => console_.overview(), 'admin'],
  [/^#\/console\/saga\/([^/]+)$/, (m) => console_.saga(m[1]), 'admin'],
  [/^#\/console\/datamap$/, () => console_.datamap(), 'admin'],
];

/** cleanup functions of the current view (event streams, timers), run on navigation. */
const cleanups = [];
export function onLeave(fn) { cleanups.push(fn); }

let generation = 0;
async function route() {
  const gen = ++generation;
  while (cleanups.length) { try { cleanups.pop()(); } catch { /* ignore */ } }
  const [path, qs] = (location.hash || '#/').split('?');
  const q = Object.fromEntries(new URLSearchParams(qs || ''));
  const main = document.getElementById('main');
  renderNav();
  for (const [re, view, need] of routes) {
    const m = path.match(re);
    if (!m) continue;
    if (need && !state.me) {
      main.replaceChildren(h('h1', {}, 'Please log in'), h('p', {}, 'This page needs you to be signed in. ', h('a', { href: '#/login' }, 'Log in'), ' or ', h('a', { href: '#/signup' }, 'sign up'), '.'));
      main.focus();
      return;
    }
    if (need === 'admin' && state.me.role !== 'admin') {
      main.replaceChildren(h('h1', {}, 'Admins only'), h('p', {}, 'This page needs an admin account.'));
      main.focus();
      return;
    }
    try {
      const nodes = await view(m, q);
      if (gen !== generation) return; // a later navigation owns the page now
      main.replaceChildren(...[].concat(nodes).filter((n) => n !== null && n !== undefined && n !== false));
    } catch (err) {
      if (gen !== generation) return;
      main.replaceChildren(h('h1', {}, 'Something went wrong'), problemBox(err));
    }
    document.title = `${main.querySelector('h1')?.textContent || 'Polyshop'} — Polyshop`;
    main.focus();
    return;
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '#/search' }, 'Go to search')));
  main.focus();
}

window.addEventListener('hashchange', route);
window.addEventListener('storage', renderNav);
refreshMe().then(route);
