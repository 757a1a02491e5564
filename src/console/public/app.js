// The console shell: hash routing (#/page/args...), the nav highlight and the health badge.
import { h } from './lib.js';
import * as datasources from './pages/datasources.js';
import * as live from './pages/live.js';
import * as overview from './pages/overview.js';
import * as pipelines from './pages/pipelines.js';
import * as tables from './pages/tables.js';
import * as topics from './pages/topics.js';

const PAGES = {
  overview: overview.render,
  topics: topics.render,
  tables: tables.render,
  datasources: datasources.render,
  jobs: live.jobs,
  cep: live.cep,
  pipelines: pipelines.render,
  lineage: live.lineage,
};

let cleanup = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const name = PAGES[parts[0]] ? parts[0] : 'overview';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
  if (cleanup) cleanup();
  cleanup = null;
  const main = document.getElementById('main');
  main.replaceChildren();
  main.dataset.page = name;
  // a page returns an optional function that stops its timers when the user navigates away
  const result = PAGES[name](
    main,
    parts.slice(1).filter((p) => p !== ''),
  );
  if (typeof result === 'function') cleanup = result;
}

async function health() {
  const el = document.getElementById('health');
  try {
    const res = await fetch('/health');
    el.replaceChildren(res.ok ? h('span.ok', null, '● healthy') : h('span', null, `● ${res.status}`));
  } catch {
    el.replaceChildren(h('span', null, '● unreachable'));
  }
}

window.addEventListener('hashchange', route);
route();
health();
setInterval(health, 10_000);
