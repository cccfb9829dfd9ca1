// Tongban console: progressive enhancement of the server-rendered pages.
// Every page works without this script; it adds keyboard review, in-place decisions and
// the operations charts. Server data is personal and untrusted: it only ever reaches the
// page through textContent and setAttribute, never innerHTML.
'use strict';
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  function say(message, isError = false) {
    const status = $('#status');
    if (!status) return;
    status.textContent = message;
    status.classList.toggle('error', isError);
  }

  // fetch, then the JSON body. The server's errors are {"error": "sentence"}; anything else
  // falls back to the HTTP status so the user still learns that something went wrong.
  async function request(url, init) {
    const response = await fetch(url, { credentials: 'same-origin', ...init })
      .catch((err) => { throw new Error(`Network error: ${err.message}`); });
    const body = await response.json().catch(() => null);
    const sentence = body && typeof body.error === 'string' ? body.error : '';
    if (!response.ok) throw new Error(sentence || `HTTP ${response.status} ${response.statusText}`.trim());
    return body || {};
  }

  const postForm = (action, fields) => request(action, {
    method: 'POST',
    headers: { 'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });

  const setDisabled = (buttons, disabled) => buttons.forEach((b) => { b.disabled = disabled; });

  const paragraph = (className, text) => Object.assign(document.createElement('p'), { className, textContent: text });

  // ---------------------------------------------------------------- review queue
  function initReview() {
    const pairs = $$('article.pair');
    const shortcuts = $('#shortcuts');
    let current = null;

    const isOpen = (pair) => !pair.classList.contains('decided') && !pair.classList.contains('skipped');

    function makeCurrent(pair, { scroll = true, focus = true } = {}) {
      if (!pair) return;
      if (current) current.classList.remove('current');
      current = pair;
      pair.classList.add('current');
      // Leave the page still when the pair already starts in the upper part of the window,
      // so the header and status line stay visible for the first pair.
      const top = pair.getBoundingClientRect().top;
      if (scroll && (top < 0 || top > window.innerHeight * 0.4)) pair.scrollIntoView({ block: 'start' });
      if (focus) pair.focus({ preventScroll: true });
    }

    // The next pair still waiting for a verdict, wrapping to earlier ones left open
    // (the steward may have gone back with ArrowUp).
    function nextOpen(from) {
      const i = pairs.indexOf(from);
      return pairs.slice(i + 1).concat(pairs.slice(0, i + 1)).find(isOpen) || null;
    }

    function advance(from, message) {
      const next = nextOpen(from);
      if (next) makeCurrent(next);
      const hint = next ? '' : $('a#next-page')
        ? 'No open pairs left on this page: follow “Next page” for more'
        : 'No open pairs left on this page';
      say([message, hint].filter(Boolean).join('. '));
    }

    async function decide(pair, verdict) {
      const form = $('form.decide', pair);
      if (!form || pair.getAttribute('aria-busy') === 'true') return; // decided or in flight
      const buttons = $$('button', form);
      setDisabled(buttons, true);
      pair.setAttribute('aria-busy', 'true');
      try {
        const answer = await postForm(form.action, { verdict });
        const text = verdict === 'different' ? 'Different people: kept apart'
          : answer.survivor ? `Same person: merged into ${answer.survivor}` : 'Same person: merged';
        $('p.error', pair)?.remove();
        form.replaceWith(paragraph('outcome', text));
        pair.classList.remove('skipped');
        pair.classList.add('decided');
        pair.dataset.outcome = verdict;
        // The steward may have moved on while the request was in flight; don't yank them back.
        if (current === pair) advance(pair, text); else say(text);
      } catch (err) {
        $('p.error', pair)?.remove();
        form.after(paragraph('error', err.message));
        say(`Pair ${pair.dataset.pair}: ${err.message}`, true);
        setDisabled(buttons, false);
      } finally {
        pair.removeAttribute('aria-busy');
      }
    }

    function skip(pair) {
      if (!pair) return;
      if (!pair.classList.contains('decided')) pair.classList.add('skipped');
      advance(pair, `Skipped pair ${pair.dataset.pair}`);
    }

    function step(delta) {
      if (!pairs.length) return;
      const i = current ? pairs.indexOf(current) + delta : 0;
      makeCurrent(pairs[Math.max(0, Math.min(pairs.length - 1, i))]);
    }

    for (const pair of pairs) {
      // A click on a control keeps its focus; elsewhere the pair takes it for the keys.
      pair.addEventListener('click', (e) => {
        if (pair !== current) makeCurrent(pair, { scroll: false, focus: !e.target.closest('button, a, input, select, textarea') });
      });
      const form = $('form.decide', pair);
      if (!form) continue;
      form.addEventListener('submit', (e) => {
        const verdict = e.submitter && e.submitter.value;
        if (verdict !== 'same' && verdict !== 'different') return; // let the browser post it
        e.preventDefault();
        decide(pair, verdict);
      });
      $('button.skip', form)?.addEventListener('click', () => skip(pair));
    }

    document.addEventListener('keydown', (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
      if (e.target instanceof Element && e.target.closest('input, select, textarea, [contenteditable]')) return;
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      if (key === 's' && current) decide(current, 'same');
      else if (key === 'd' && current) decide(current, 'different');
      else if (key === 'k') skip(current);
      else if (key === 'j' || key === 'ArrowDown') step(1);
      else if (key === 'ArrowUp') step(-1);
      else if (key === '?' && shortcuts) shortcuts.hidden = !shortcuts.hidden;
      else return;
      e.preventDefault();
    });

    makeCurrent(pairs.find(isOpen));
  }

  // ---------------------------------------------------------------- entity view
  function initEntity() {
    for (const form of $$('form.split')) {
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const field = (name) => form.elements.namedItem(name)?.value || '';
        const source = [field('record_type'), field('source_id')].filter(Boolean).join(' ') || 'this source';
        if (!window.confirm(`Split ${source} out into a new entity?`)) return;
        const buttons = $$('button', form);
        setDisabled(buttons, true);
        try {
          const answer = await postForm(form.action, new FormData(form));
          if (answer.created) window.location.assign(`/entities/${encodeURIComponent(answer.created)}`);
          else window.location.reload();
        } catch (err) {
          say(`Split failed: ${err.message}`, true);
          setDisabled(buttons, false);
        }
      });
    }
  }

  // ---------------------------------------------------------------- operations charts
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 640, H = 220; // viewBox; the SVG scales to its figure's width
  const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  const OUTCOMES = [['accepted', '#59a14f'], ['unchanged', '#9aa5b1'], ['stale', '#edc948'], ['rejected', '#e15759']];
  const PERCENTILES = [['p50_ms', 'p50', '#4e79a7'], ['p90_ms', 'p90', '#f28e2b'], ['p99_ms', 'p99', '#e15759']];

  const pad = (n) => String(n).padStart(2, '0');
  const hhmm = (seconds) => { const d = new Date(seconds * 1000); return `${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  const fmt = (v) => (!Number.isFinite(v) ? '–' : Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2))));
  const records = (w) => (w.accepted || 0) + (w.unchanged || 0) + (w.stale || 0) + (w.rejected || 0);

  function node(parent, name, attrs = {}, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    parent.appendChild(el);
    return el;
  }
  const tip = (el, text) => node(el, 'title', {}, text); // hover tooltip

  function canvas(id) {
    const svg = $(`#${id} svg`);
    if (!svg) return null;
    svg.replaceChildren();
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('width', '100%');
    return svg;
  }

  const empty = (svg, text) => node(svg, 'text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, text);

  function legend(svg, items) {
    // Right-aligned in the top margin so it never covers bars.
    let x = W - 8 - items.reduce((w, it) => w + 22 + it.name.length * 6.5, 0);
    for (const { name, colour } of items) {
      node(svg, 'rect', { x, y: 5, width: 10, height: 10, fill: colour });
      node(svg, 'text', { x: x + 14, y: 14, class: 'tick' }, name);
      x += 22 + name.length * 6.5;
    }
  }

  // Round tick steps (1, 2, 5 × 10^k) so axis labels read well; counts get whole steps.
  function niceScale(max, whole) {
    const raw = Math.max(max, whole ? 1 : 1e-9) / 4;
    const p = 10 ** Math.floor(Math.log10(raw));
    let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    if (whole) step = Math.max(1, Math.round(step));
    return { step, top: step * Math.max(1, Math.ceil(max / step)) };
  }

  // A value axis with grid lines; returns value → coordinate. Horizontal for bar rows.
  function valueAxis(svg, box, max, { horizontal = false, whole = true, unit = '' } = {}) {
    const { step, top } = niceScale(max, whole);
    const scale = horizontal
      ? (v) => box.l + (v / top) * (box.r - box.l)
      : (v) => box.b - (v / top) * (box.b - box.t);
    for (let i = 0; i * step <= top * 1.0001; i++) {
      const p = scale(i * step);
      const cls = i ? 'grid' : 'axis';
      if (horizontal) {
        node(svg, 'line', { x1: p, x2: p, y1: box.t, y2: box.b, class: cls });
        node(svg, 'text', { x: p, y: box.b + 14, 'text-anchor': 'middle', class: 'tick' }, fmt(i * step));
      } else {
        node(svg, 'line', { x1: box.l, x2: box.r, y1: p, y2: p, class: cls });
        node(svg, 'text', { x: box.l - 4, y: p + 4, 'text-anchor': 'end', class: 'tick' }, fmt(i * step));
      }
    }
    if (unit) node(svg, 'text', { x: 4, y: 14, class: 'tick unit' }, unit);
    return scale;
  }

  // Time buckets of window_minutes covering since..until, aligned like the server's windows,
  // so empty windows show as gaps instead of being squeezed out.
  function timeBuckets(data) {
    const step = Math.max(1, data.window_minutes || 1) * 60;
    const end = Math.ceil(data.until / step) * step;
    const count = Math.min(240, Math.max(1, Math.ceil((end - Math.floor(data.since / step) * step) / step)));
    const first = end - count * step;
    const starts = Array.from({ length: count }, (_, i) => first + i * step);
    const index = (start) => { const i = Math.floor((start - first) / step); return i >= 0 && i < count ? i : -1; };
    return { starts, index };
  }

  function perBucket(rows, buckets, value) {
    const values = buckets.starts.map(() => 0);
    for (const row of rows) {
      const i = buckets.index(row.start);
      if (i >= 0) values[i] += value(row);
    }
    return values;
  }

  function timeAxis(svg, box, buckets, centre) {
    const every = Math.ceil(buckets.starts.length / 7);
    buckets.starts.forEach((start, i) => {
      if (i % every === 0) node(svg, 'text', { x: centre(i), y: box.b + 14, 'text-anchor': 'middle', class: 'tick' }, hhmm(start));
    });
  }

  // Stacked columns, one per time bucket; series = [{name, colour, values[]}].
  function stackedColumns(svg, box, buckets, series, unit) {
    const sums = buckets.starts.map((_, i) => series.reduce((t, s) => t + s.values[i], 0));
    const y = valueAxis(svg, box, Math.max(0, ...sums), { unit });
    const slot = (box.r - box.l) / buckets.starts.length;
    buckets.starts.forEach((start, i) => {
      let base = 0;
      for (const s of series) {
        const v = s.values[i];
        if (!v) continue;
        const bar = node(svg, 'rect', { x: box.l + i * slot + slot * 0.1, width: slot * 0.8, y: y(base + v), height: y(base) - y(base + v), fill: s.colour });
        tip(bar, `${s.name} ${hhmm(start)}: ${fmt(v)} ${unit}`);
        base += v;
      }
    });
    timeAxis(svg, box, buckets, (i) => box.l + (i + 0.5) * slot);
  }

  // Horizontal stacked bars; rows = [{label, title, parts: [{name, colour, value}]}].
  function stackedRows(svg, box, rows) {
    const totals = rows.map((r) => r.parts.reduce((t, p) => t + p.value, 0));
    const x = valueAxis(svg, box, Math.max(0, ...totals), { horizontal: true });
    const slot = (box.b - box.t) / rows.length;
    const h = Math.min(slot * 0.7, 22);
    rows.forEach((row, i) => {
      const top = box.t + i * slot + (slot - h) / 2;
      const label = node(svg, 'text', { x: box.l - 6, y: top + h / 2 + 4, 'text-anchor': 'end', class: 'label' }, row.label);
      tip(label, row.title || row.label);
      let base = 0;
      for (const p of row.parts) {
        if (!p.value) continue;
        const bar = node(svg, 'rect', { x: x(base), width: x(base + p.value) - x(base), y: top, height: h, fill: p.colour });
        tip(bar, `${row.title || row.label}: ${fmt(p.value)} ${p.name}`);
        base += p.value;
      }
      node(svg, 'text', { x: x(base) + 4, y: top + h / 2 + 4, class: 'tick' }, fmt(totals[i]));
    });
  }

  function drawRecords(svg, data, buckets) {
    const names = new Set([...data.departments, ...data.windows.map((w) => w.department)]);
    const series = [...names].map((name, i) => ({
      name, colour: PALETTE[i % PALETTE.length],
      values: perBucket(data.windows.filter((w) => w.department === name), buckets, records),
    }));
    stackedColumns(svg, { l: 44, r: W - 10, t: 26, b: H - 22 }, buckets, series, 'records');
    legend(svg, series);
  }

  function drawOutcomes(svg, data) {
    if (!data.totals.length) { empty(svg, 'no records in this period'); return; }
    const rows = data.totals.map((t) => ({
      label: t.department,
      parts: OUTCOMES.map(([name, colour]) => ({ name, colour, value: t[name] || 0 })),
    }));
    stackedRows(svg, { l: 96, r: W - 44, t: 24, b: H - 22 }, rows);
    legend(svg, OUTCOMES.map(([name, colour]) => ({ name, colour })));
  }

  function drawRejections(svg, data) {
    if (!data.rejections.length) { empty(svg, 'no rejections'); return; }
    const shown = [...data.rejections].sort((a, b) => b.records - a.records).slice(0, 7);
    const rows = shown.map((r) => {
      const title = `${r.department} ${r.code}`;
      const label = title.length > 34 ? `${title.slice(0, 33)}…` : title;
      return { label, title, parts: [{ name: 'records rejected', colour: '#e15759', value: r.records || 0 }] };
    });
    stackedRows(svg, { l: 230, r: W - 44, t: 20, b: H - 22 }, rows);
    if (data.rejections.length > shown.length) {
      node(svg, 'text', { x: W - 8, y: 12, 'text-anchor': 'end', class: 'tick' }, `top ${shown.length} of ${data.rejections.length} reasons`);
    }
  }

  function drawLatency(svg, data, buckets) {
    // Departments are merged per window by taking the maximum of each percentile: the
    // line then shows the slowest department, which is what an operator needs to see.
    const lines = PERCENTILES.map(([field, name, colour]) => {
      const values = buckets.starts.map(() => null);
      for (const w of data.windows) {
        const i = buckets.index(w.start);
        if (i >= 0 && Number.isFinite(w[field])) values[i] = Math.max(values[i] ?? 0, w[field]);
      }
      return { name, colour, values };
    });
    const all = lines.flatMap((l) => l.values.filter((v) => v !== null));
    if (!all.length) { empty(svg, 'no batches in this period'); return; }
    const box = { l: 44, r: W - 10, t: 26, b: H - 22 };
    const y = valueAxis(svg, box, Math.max(...all), { whole: false, unit: 'ms' });
    const slot = (box.r - box.l) / buckets.starts.length;
    const x = (i) => box.l + (i + 0.5) * slot;
    for (const line of lines) {
      // A missing window breaks the line rather than drawing a slope across it.
      let d = '';
      line.values.forEach((v, i) => { if (v !== null) d += `${line.values[i - 1] == null ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)} `; });
      node(svg, 'path', { d, fill: 'none', stroke: line.colour, 'stroke-width': 2 });
      line.values.forEach((v, i) => {
        if (v !== null) tip(node(svg, 'circle', { cx: x(i), cy: y(v), r: 2.5, fill: line.colour }), `${line.name} ${hhmm(buckets.starts[i])}: ${fmt(v)} ms`);
      });
    }
    timeAxis(svg, box, buckets, x);
    legend(svg, lines);
  }

  function drawAvoided(svg, data, buckets) {
    const values = perBucket(data.windows, buckets, (w) => w.collections_avoided || 0);
    stackedColumns(svg, { l: 44, r: W - 10, t: 26, b: H - 22 }, buckets, [{ name: 'avoided', colour: '#76b7b2', values }], 'collections');
    const total = values.reduce((t, v) => t + v, 0);
    const minutes = Math.round((data.until - data.since) / 60);
    const figure = svg.closest('figure');
    const note = paragraph('chart-note', `${fmt(total)} repeated collections avoided in the last ${minutes} minutes`);
    const old = $('p.chart-note', figure);
    if (old) old.replaceWith(note); else figure.append(note);
  }

  function bigNumber(svg, x, value, label, cls = '') {
    const group = node(svg, 'g');
    tip(group, `${label}: ${fmt(value)}`);
    node(group, 'text', { x, y: 96, 'text-anchor': 'middle', class: `big-number ${cls}` }, fmt(value));
    node(group, 'text', { x, y: 124, 'text-anchor': 'middle', class: 'label' }, label);
  }

  function drawFeed(svg, data) {
    const feed = data.feed || {};
    bigNumber(svg, W / 4, feed.head, 'feed head position');
    bigNumber(svg, (3 * W) / 4, feed.lag, 'changes the slowest open feed is behind', feed.lag > 0 ? 'warn' : '');
    const text = `feeds open on this replica: ${fmt(feed.open_feeds)}`;
    tip(node(svg, 'text', { x: W / 2, y: 180, 'text-anchor': 'middle', class: 'label' }, text), text);
  }

  function drawCharts(data) {
    for (const key of ['departments', 'windows', 'totals', 'rejections']) data[key] = data[key] || [];
    const buckets = timeBuckets(data);
    const charts = { 'chart-records': drawRecords, 'chart-outcomes': drawOutcomes, 'chart-rejections': drawRejections,
      'chart-latency': drawLatency, 'chart-avoided': drawAvoided, 'chart-feed': drawFeed };
    for (const [id, draw] of Object.entries(charts)) {
      const svg = canvas(id);
      // One chart failing on odd data must not blank the others.
      try { if (svg) draw(svg, data, buckets); } catch (err) { console.error(id, err); }
    }
  }

  function initOperations() {
    let inFlight = false;
    async function refresh() {
      if (inFlight) return; // a slow hub must not pile up requests
      inFlight = true;
      try {
        drawCharts(await request('/operations/data.json?minutes=60', { headers: { Accept: 'application/json' }, cache: 'no-store' }));
        const now = new Date();
        const updated = $('#updated');
        if (updated) updated.textContent = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
        if ($('#status.error')) say(''); // the hub answers again
      } catch (err) {
        say(`Could not refresh the charts (showing the last data): ${err.message}`, true);
      } finally {
        inFlight = false;
      }
    }
    refresh();
    window.setInterval(refresh, 5000);
  }

  // ---------------------------------------------------------------- data quality
  function initQuality() {
    // The filter has no submit button worth pressing: a new department reloads the report.
    const select = $('select#department');
    if (select && select.form) select.addEventListener('change', () => select.form.requestSubmit());
  }

  const views = { review: initReview, entity: initEntity, operations: initOperations, quality: initQuality };
  const start = views[document.body.dataset.view];
  if (start) start();
})();
