// The usage dashboard: reads the admin API's usage routes (same origin, so the same
// authorization: behind IAM, open it through `zl proxy`) and draws one bar chart per series.
// Plain JavaScript, no build step, no third-party code.
'use strict';

(function () {
  const form = document.getElementById('query');
  const statusEl = document.getElementById('status');
  const charts = document.getElementById('charts');
  const summary = document.getElementById('summary');
  const tableWrap = document.getElementById('table-wrap');
  const table = document.getElementById('table');
  // The API's base: the page is served at {base}/v1/system/dashboard (a stage prefix kept).
  const base = location.pathname.replace(/\/v1\/system\/dashboard\/?$/, '');
  const HOUR = 3600e3, DAY = 24 * HOUR;
  const RANGES = { '6h': 6 * HOUR, '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY, '90d': 90 * DAY };
  const MAX_WINDOWS = 2000;

  function setStatus(msg, isError) {
    statusEl.textContent = msg;
    statusEl.className = isError ? 'error' : '';
  }

  function field(name) { return form.elements[name]; }

  function kind() { return form.querySelector('input[name=kind]:checked').value; }

  function syncForm() {
    form.classList.toggle('custom-range', field('range').value === 'custom');
    document.getElementById('resource-filter').style.display = kind() === 'entity' ? '' : 'none';
  }

  // utcInput formats a Date for a datetime-local input holding UTC.
  function utcInput(d) { return d.toISOString().slice(0, 16); }

  function parseUTC(v) {
    const d = new Date(v + ':00Z');
    return isNaN(d) ? null : d;
  }

  // query reads the form: what to read and the range [from, to].
  function query() {
    const q = { kind: kind(), id: field('id').value.trim(), resource: field('resource').value.trim(),
      window: field('window').value, range: field('range').value };
    if (q.range === 'custom') {
      q.from = parseUTC(field('from').value);
      q.to = parseUTC(field('to').value);
      if (!q.from || !q.to) throw new Error('give both ends of a custom range');
      if (q.from >= q.to) throw new Error('"from" must be before "to"');
    } else {
      q.to = new Date();
      q.from = new Date(q.to.getTime() - RANGES[q.range]);
    }
    if (!q.id) throw new Error('give an ' + q.kind + ' id');
    return q;
  }

  async function getJSON(url) {
    const resp = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const what = body && (body.error || body.message) ? (body.error || '') + (body.message ? ': ' + body.message : '') : resp.statusText;
      throw new Error('HTTP ' + resp.status + ' ' + what);
    }
    return body;
  }

  // fetchAll follows next_token until the last page.
  async function fetchAll(q) {
    const path = q.kind === 'entity'
      ? '/v1/entities/' + encodeURIComponent(q.id) + '/usage'
      : '/v1/resources/' + encodeURIComponent(q.id) + '/usage';
    const params = new URLSearchParams({ window: q.window, from: isoSeconds(q.from), to: isoSeconds(q.to), limit: '1000' });
    if (q.kind === 'entity' && q.resource) params.set('resource', q.resource);
    const out = [];
    for (let pages = 0; pages < 100; pages++) {
      const page = await getJSON(base + path + '?' + params);
      out.push(...page.snapshots);
      if (!page.next_token) return out;
      params.set('next_token', page.next_token);
    }
    throw new Error('more than 100 pages: narrow the range');
  }

  function isoSeconds(d) { return d.toISOString().replace(/\.\d+Z$/, 'Z'); }

  // windows sums snapshots per window start and fills empty windows with zeros.
  function windows(snaps, q) {
    const step = q.window === 'daily' ? DAY : HOUR;
    const by = new Map();
    const empty = (t) => ({ start: t, acquires: 0, refusals: null, counters: {}, entities: new Set() });
    const first = Math.floor(q.from.getTime() / step) * step;
    if ((q.to.getTime() - first) / step <= MAX_WINDOWS) {
      for (let t = first; t <= q.to.getTime(); t += step) by.set(t, empty(t));
    }
    for (const s of snaps) {
      const t = Date.parse(s.window_start);
      if (!by.has(t)) by.set(t, empty(t));
      const w = by.get(t);
      w.acquires += s.acquires;
      w.entities.add(s.entity_id);
      if (typeof s.refusals === 'number') w.refusals = (w.refusals || 0) + s.refusals;
      for (const [k, v] of Object.entries(s.counters || {})) w.counters[k] = (w.counters[k] || 0) + v;
    }
    return [...by.values()].sort((a, b) => a.start - b.start);
  }

  function label(t, daily) {
    const iso = new Date(t).toISOString();
    return daily ? iso.slice(0, 10) : iso.slice(5, 10) + ' ' + iso.slice(11, 16);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // chart draws one series as bars, one per window, with its peak and the range's ends.
  function chart(title, series, ws, value, daily, cls, fmt) {
    fmt = fmt || String;
    const box = document.createElement('div');
    box.className = 'chart';
    box.dataset.series = series;
    const vals = ws.map(value);
    const total = vals.reduce((a, v) => a + (v || 0), 0);
    const peak = Math.max(0, ...vals.map((v) => v || 0));
    box.dataset.total = String(total);
    box.dataset.peak = String(peak);
    const h2 = document.createElement('h2');
    h2.textContent = title + ' — peak ' + fmt(peak);
    box.appendChild(h2);
    const W = 1000, H = 180, top = 10, bottom = 24, left = 4;
    const svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
    const bw = (W - left) / Math.max(ws.length, 1);
    ws.forEach((w, i) => {
      const v = vals[i] || 0;
      const bh = peak > 0 ? (H - top - bottom) * v / peak : 0;
      const r = el('rect', { class: 'bar ' + (cls || ''), x: left + i * bw + bw * 0.1, y: H - bottom - bh, width: Math.max(bw * 0.8, 1), height: bh });
      r.appendChild(el('title', {}, label(w.start, daily) + ': ' + fmt(v)));
      svg.appendChild(r);
    });
    svg.appendChild(el('line', { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, stroke: '#9aa3b2' }));
    if (ws.length) {
      svg.appendChild(el('text', { x: left, y: H - 8 }, label(ws[0].start, daily)));
      svg.appendChild(el('text', { x: W - 4, y: H - 8, 'text-anchor': 'end' }, label(ws[ws.length - 1].start, daily)));
    }
    box.appendChild(svg);
    charts.appendChild(box);
  }

  function stat(name, value) {
    const d = document.createElement('div');
    d.className = 'stat';
    d.dataset.stat = name;
    const b = document.createElement('b');
    b.textContent = value;
    d.append(b, name);
    summary.appendChild(d);
  }

  function render(snaps, q) {
    const daily = q.window === 'daily';
    const ws = windows(snaps, q);
    const names = [...new Set(ws.flatMap((w) => Object.keys(w.counters)))].sort();
    summary.replaceChildren();
    charts.replaceChildren();
    const acquires = ws.reduce((a, w) => a + w.acquires, 0);
    const entities = new Set(snaps.map((s) => s.entity_id));
    stat('acquires', acquires);
    for (const n of names) stat(n + ' tokens', ws.reduce((a, w) => a + (w.counters[n] || 0), 0));
    stat(q.kind === 'resource' ? 'entities' : 'resources', q.kind === 'resource' ? entities.size : new Set(snaps.map((s) => s.resource)).size);
    stat('windows', ws.length);
    summary.hidden = false;
    const unit = daily ? 'day' : 'hour';
    chart('Acquires per ' + unit, 'acquires', ws, (w) => w.acquires, daily);
    for (const n of names) chart(n + ' tokens per ' + unit, 'counter:' + n, ws, (w) => w.counters[n] || 0, daily);
    if (ws.some((w) => w.refusals !== null)) {
      chart('Refusal rate per ' + unit, 'refusal-rate', ws, (w) => {
        const r = w.refusals || 0, n = r + w.acquires;
        return n > 0 ? r / n : 0;
      }, daily, 'refusals', (v) => (100 * v).toFixed(1) + '%');
    } else {
      const p = document.createElement('p');
      p.className = 'note';
      p.id = 'refusals-note';
      p.textContent = 'Refusal rate: not recorded in these snapshots (the aggregator counts what was consumed; refusals consume nothing).';
      charts.appendChild(p);
    }
    const head = '<tr><th>window (UTC)</th><th>acquires</th>' + names.map((n) => '<th></th>').join('') + '</tr>';
    table.innerHTML = head;
    names.forEach((n, i) => { table.rows[0].cells[2 + i].textContent = n; });
    for (const w of ws) {
      const tr = table.insertRow();
      tr.insertCell().textContent = label(w.start, daily);
      tr.insertCell().textContent = w.acquires;
      for (const n of names) tr.insertCell().textContent = w.counters[n] || 0;
    }
    tableWrap.hidden = false;
    setStatus(snaps.length + ' snapshots, ' + isoSeconds(q.from) + ' to ' + isoSeconds(q.to) + (snaps.length ? '' : ' — no usage in this range'));
  }

  async function load() {
    let q;
    try {
      q = query();
    } catch (e) {
      setStatus(e.message, true);
      return;
    }
    const state = new URLSearchParams({ kind: q.kind, id: q.id, window: q.window, range: q.range });
    if (q.resource) state.set('resource', q.resource);
    if (q.range === 'custom') { state.set('from', field('from').value); state.set('to', field('to').value); }
    history.replaceState(null, '', '#' + state);
    setStatus('loading…');
    document.body.dataset.state = 'loading';
    try {
      render(await fetchAll(q), q);
      document.body.dataset.state = 'ready';
    } catch (e) {
      setStatus(e.message, true);
      document.body.dataset.state = 'error';
    }
  }

  // restore fills the form from the page's #fragment (a shared link).
  function restore() {
    const s = new URLSearchParams(location.hash.slice(1));
    if (!s.get('id')) return false;
    const k = form.querySelector('input[name=kind][value="' + (s.get('kind') === 'resource' ? 'resource' : 'entity') + '"]');
    k.checked = true;
    field('id').value = s.get('id');
    field('resource').value = s.get('resource') || '';
    if (s.get('window') === 'daily') field('window').value = 'daily';
    if (s.get('range') && (s.get('range') in RANGES || s.get('range') === 'custom')) field('range').value = s.get('range');
    if (s.get('from')) field('from').value = s.get('from');
    if (s.get('to')) field('to').value = s.get('to');
    return true;
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  form.addEventListener('change', syncForm);
  const now = new Date();
  field('to').value = utcInput(now);
  field('from').value = utcInput(new Date(now.getTime() - DAY));
  const restored = restore();
  syncForm();
  document.body.dataset.state = 'idle';
  if (restored) load();
})();
