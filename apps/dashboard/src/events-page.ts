/** Path of the Events page. */
export const EVENTS_PATH = '/events';

/** The status colours of the chart and the table, in legend order. */
const STATUS_COLORS: Record<string, string> = {
  completed: '#2e9d5b',
  failed: '#d64541',
  retrying: '#e8a33d',
  received: '#5b8def',
  skipped: '#8e9aaf',
  unhandled: '#9b59b6',
  stale: '#6c7a89',
};

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1f2933}
header{background:#1f2933;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cbd2d9}main{padding:16px 20px}
form{display:flex;flex-wrap:wrap;gap:10px;align-items:end;background:#fff;padding:12px;border-radius:6px}
label{display:flex;flex-direction:column;font-size:12px;color:#52606d}
input,select{font:inherit;padding:4px 6px;min-width:120px}
button{font:inherit;padding:5px 14px;cursor:pointer}
section{background:#fff;margin-top:14px;padding:12px;border-radius:6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
tbody tr.event{cursor:pointer}tbody tr.event:hover{background:#eef2f7}
.status{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:12px}
pre{background:#f0f2f5;padding:8px;overflow:auto;max-height:320px}
#message{color:#52606d}.error{color:#b42318}
.legend span{margin-right:12px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
`;

/**
 * The browser side: reads the form, calls the JSON API, and renders with DOM methods and
 * `textContent` only, so nothing from an event (ids, payloads, errors) is ever parsed as HTML.
 */
const SCRIPT = `
const COLORS = ${JSON.stringify(STATUS_COLORS)};
const $ = (id) => document.getElementById(id);
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
  return node;
}
function statusBadge(status) {
  return el('span', { className: 'status', textContent: status, style: 'background:' + (COLORS[status] || '#888') });
}
function filters() {
  const params = new URLSearchParams();
  for (const name of ['type', 'status', 'since', 'until', 'idPrefix', 'limit']) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}
async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
function chart(counts) {
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  const width = 900, height = 160, pad = 24;
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + (height + pad));
  svg.setAttribute('width', '100%');
  svg.setAttribute('role', 'img');
  const since = Date.parse(counts.since), until = Date.parse(counts.until);
  const slots = Math.max(1, Math.ceil((until - since) / (counts.bucketSeconds * 1000)));
  const barWidth = Math.max(1, (width - pad) / slots - 1);
  let max = 1;
  for (const bucket of counts.buckets) {
    max = Math.max(max, Object.values(bucket.counts).reduce((a, b) => a + b, 0));
  }
  for (const bucket of counts.buckets) {
    const slot = Math.floor((Date.parse(bucket.at) - since) / (counts.bucketSeconds * 1000));
    let y = height;
    for (const status of Object.keys(COLORS)) {
      const n = bucket.counts[status] || 0;
      if (!n) continue;
      const h = (n / max) * (height - 10);
      y -= h;
      const rect = document.createElementNS(svgNs, 'rect');
      rect.setAttribute('x', String(pad + slot * (barWidth + 1)));
      rect.setAttribute('y', String(y));
      rect.setAttribute('width', String(barWidth));
      rect.setAttribute('height', String(h));
      rect.setAttribute('fill', COLORS[status]);
      const title = document.createElementNS(svgNs, 'title');
      title.textContent = bucket.at + ' ' + status + ': ' + n;
      rect.append(title);
      svg.append(rect);
    }
  }
  const axis = document.createElementNS(svgNs, 'text');
  axis.setAttribute('x', String(pad));
  axis.setAttribute('y', String(height + 16));
  axis.setAttribute('font-size', '11');
  axis.textContent = counts.since + ' → ' + counts.until + ' (max ' + max + ' per ' + (counts.bucketSeconds / 60) + ' min)';
  svg.append(axis);
  const legend = el('div', { className: 'legend' });
  for (const [status, color] of Object.entries(COLORS)) {
    legend.append(el('span', {}, el('i', { style: 'background:' + color }), status));
  }
  $('chart').replaceChildren(el('h2', { textContent: 'Events per ' + (counts.bucketSeconds / 60) + ' min by status' }), svg, legend);
}
async function search(event) {
  event?.preventDefault();
  $('message').textContent = 'Loading…';
  $('message').className = '';
  try {
    const params = filters();
    const [list, counts] = await Promise.all([
      getJson('/api/events?' + params),
      getJson('/api/event-counts?' + params),
    ]);
    chart(counts);
    const rows = list.events.map((e) => {
      const row = el('tr', { className: 'event' },
        el('td', {}, el('a', { href: '#' + encodeURIComponent(e.eventId), textContent: e.eventId })),
        el('td', { textContent: e.type }), el('td', {}, statusBadge(e.status)),
        el('td', { textContent: e.attempts }),
        el('td', { textContent: e.deliveries + (e.duplicates ? ' (' + e.duplicates + ' dup)' : '') }),
        el('td', { textContent: e.receivedAt }), el('td', { textContent: e.lastError || '' }));
      row.addEventListener('click', (click) => { click.preventDefault(); show(e.eventId); });
      return row;
    });
    $('rows').replaceChildren(...rows);
    $('message').textContent = list.events.length + ' event(s)' + (list.more ? ', more match: narrow the filters or raise the limit' : '');
  } catch (error) {
    $('message').textContent = error.message;
    $('message').className = 'error';
  }
}
async function show(eventId) {
  const detail = $('detail');
  detail.hidden = false;
  detail.replaceChildren(el('p', { textContent: 'Loading ' + eventId + '…' }));
  try {
    const e = await getJson('/api/events/' + encodeURIComponent(eventId));
    let payload = e.payload;
    if (payload !== null) try { payload = JSON.stringify(JSON.parse(payload), null, 2); } catch {}
    const attempts = el('table', {}, el('thead', {}, el('tr', {},
      ...['#', 'started', 'duration', 'outcome', 'worker', 'error', 'replay'].map((h) => el('th', { textContent: h })))),
      el('tbody', { id: 'attempts' }, ...e.attemptList.map((a) => el('tr', {},
        el('td', { textContent: a.attempt }), el('td', { textContent: a.startedAt }),
        el('td', { textContent: a.durationMs + ' ms' }), el('td', {}, statusBadge(a.outcome)),
        el('td', { textContent: a.worker }),
        el('td', { textContent: a.error ? (a.errorType || 'Error') + ': ' + a.error : '' }),
        el('td', { textContent: a.replayId || '' })))));
    const deliveries = el('ul', {}, ...e.deliveryList.map((d) =>
      el('li', { textContent: d.receivedAt + ' ' + d.outcome + (d.keyIndex === null ? '' : ' (key ' + d.keyIndex + ')') })));
    detail.replaceChildren(
      el('h2', { textContent: 'Event ' + e.eventId }),
      el('p', {}, e.type + ' · ', statusBadge(e.status), ' · created ' + (e.created || '-') + ' · received ' + e.receivedAt),
      el('h3', { textContent: 'Payload (as received)' }), el('pre', { id: 'payload', textContent: payload ?? '(not archived yet)' }),
      el('h3', { textContent: 'Deliveries' }), deliveries,
      el('h3', { textContent: 'Attempts (' + e.attemptList.length + ')' }), attempts);
  } catch (error) {
    detail.replaceChildren(el('p', { className: 'error', textContent: error.message }));
  }
}
$('filters').addEventListener('submit', search);
if (!$('since').value) $('since').value = new Date(Date.now() - 3600_000).toISOString().slice(0, 16) + 'Z';
search();
if (location.hash.length > 1) show(decodeURIComponent(location.hash.slice(1)));
`;

const FORM = `
<form id="filters">
  <label>Type<input id="type" name="type" placeholder="resource.updated"></label>
  <label>Status<select id="status" name="status"><option value="">any</option>${Object.keys(
    STATUS_COLORS,
  )
    .map((s) => `<option>${s}</option>`)
    .join('')}</select></label>
  <label>Since (ISO, UTC)<input id="since" name="since" placeholder="2026-11-28T14:00Z"></label>
  <label>Until<input id="until" name="until" placeholder="now"></label>
  <label>Id prefix<input id="idPrefix" name="idPrefix"></label>
  <label>Limit<input id="limit" name="limit" value="100" size="5"></label>
  <button type="submit">Search</button>
</form>
<section id="chart"></section>
<section>
  <p id="message"></p>
  <table><thead><tr><th>Event id</th><th>Type</th><th>Status</th><th>Attempts</th><th>Deliveries</th><th>Received</th><th>Last error</th></tr></thead>
  <tbody id="rows"></tbody></table>
</section>
<section id="detail" hidden></section>`;

/**
 * The Events page: a filter form, a chart of events per time bucket by status, the matching
 * events, and one event's payload, deliveries and attempts. No external assets: styles, script
 * and chart (inline SVG) are all in the page. Without a history it says how to turn one on.
 */
export function eventsPage(historyOn: boolean): string {
  const body = historyOn
    ? `${FORM}<script>${SCRIPT}</script>`
    : `<section><p id="message">Event history is off: set <code>ARCHIVE_DATABASE_URL</code> to a PostgreSQL URL for the workers and the dashboard (see docs/history.md). <code>pnpm start</code> sets one up by itself.</p></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Events · groq-webhooks</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body><header><strong>groq-webhooks</strong><span>Event history</span><a href="/">Queues (Bull Board)</a></header>
<main>${body}</main></body></html>`;
}
