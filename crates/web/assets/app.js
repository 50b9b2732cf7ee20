// Perdure web UI. Every page is a server-rendered shell (<body data-page=...>); this script fills
// it from the HTTP API under /api/v1. Values from the API are only ever set with textContent (or
// as attribute values), never parsed as HTML, so a payload like "<script>" shows as text.

const body = document.body;
const NS = body.dataset.namespace || 'default';
const main = document.getElementById('main');
const enc = encodeURIComponent;
const ROW = 30; // px per row in virtualised lists
const TRUNCATE = 4000; // characters of JSON shown before "Show all"
const QUERY_WAIT_MS = 30000; // a sticky worker that died is given up after its schedule-to-start timeout (10 s)

// ---------- small DOM helpers ----------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clear(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function toast(text, kind = 'ok') {
  const t = document.getElementById('toast');
  t.className = 'show ' + kind;
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ''; }, 4000);
}

function errorBox(err) {
  return el('div', { class: 'error', role: 'alert' }, err instanceof ApiError ? `${err.message} (HTTP ${err.status})` : String(err.message || err));
}

// ---------- the HTTP API ----------

class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(path, { method = 'GET', body, timeoutMs } = {}) {
  const ctl = new AbortController();
  const timer = timeoutMs ? setTimeout(() => ctl.abort(), timeoutMs) : null;
  let res;
  try {
    res = await fetch('/api/v1' + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw new ApiError(0, `no answer within ${Math.round(timeoutMs / 1000)} s`);
    throw new ApiError(0, `the server cannot be reached: ${e.message}`);
  } finally {
    if (timer) clearTimeout(timer);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, (json && json.message) || text || res.statusText, json);
  return json;
}

// crypto.randomUUID needs a secure context; a UI reached over plain HTTP on a LAN address is not.
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const nsPath = (ns = NS) => `/namespaces/${enc(ns)}`;
const wfUrl = (wid, rid, tab = 'history') => `/namespaces/${enc(NS)}/workflows/${enc(wid)}/${enc(rid)}/${tab}`;
const tqUrl = (tq) => `/namespaces/${enc(NS)}/task-queues/${enc(tq)}`;

// A payload in the API's shorthand is its JSON value; others keep {metadata, data}.
function payloadValue(p) {
  if (p && typeof p === 'object' && p.metadata && typeof p.metadata === 'object') {
    try {
      const encoding = atob(p.metadata.encoding || '');
      if (encoding === 'json/plain') return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(p.data || ''), (c) => c.charCodeAt(0))));
      if (encoding === 'binary/null') return null;
    } catch { /* keep as is */ }
  }
  return p;
}

// ---------- formatting ----------

const STATUSES = ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut'];

function statusName(s) {
  if (!s) return 'Unknown';
  const tail = s.replace('WORKFLOW_EXECUTION_STATUS_', '');
  return tail.split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join('').replace('Continuedasnew', 'ContinuedAsNew').replace('Timedout', 'TimedOut');
}

function badge(status) {
  const name = statusName(status);
  return el('span', { class: `badge s-${name.toLowerCase()}`, text: name });
}

function time(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function duration(from, to) {
  if (!from || !to) return '';
  let ms = new Date(to) - new Date(from);
  if (!(ms >= 0)) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function shortType(t) {
  return (t || '').replace('EVENT_TYPE_', '').split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join('');
}

// Pretty JSON, truncated with a control to show all: large payloads never stall the page.
function jsonBlock(value, label) {
  const text = typeof value === 'string' && label === 'raw' ? value : JSON.stringify(value, null, 2);
  const pre = el('pre', { class: 'json' });
  const wrap = el('div', { class: 'json-wrap' }, pre);
  if (text === undefined) { pre.textContent = '(none)'; return wrap; }
  if (text.length > TRUNCATE) {
    pre.textContent = text.slice(0, TRUNCATE) + '\n…';
    wrap.append(el('button', {
      class: 'link', type: 'button', text: `Show all (${Math.round(text.length / 1024)} KB)`,
      onclick: (e) => { pre.textContent = text; e.target.remove(); },
    }));
  } else {
    pre.textContent = text;
  }
  return wrap;
}

function parseJsonField(text, what) {
  if (!text.trim()) return undefined;
  try { return JSON.parse(text); } catch (e) { throw new Error(`${what} is not valid JSON: ${e.message}`); }
}

// Arguments: a JSON array is the argument list; any other JSON value is one argument.
function argsOf(text, what = 'Input') {
  const v = parseJsonField(text, what);
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

function quote(s) { return `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`; }

function field(label, input, hint) {
  return el('label', { class: 'field' }, el('span', { text: label }), input, hint ? el('small', { class: 'muted', text: hint }) : null);
}

function kv(rows) {
  return el('dl', { class: 'kv' }, rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
}

// ---------- namespace switcher ----------

async function namespaceSwitcher() {
  const sel = document.getElementById('ns-switch');
  if (!sel) return;
  sel.addEventListener('change', () => { location.href = `/namespaces/${enc(sel.value)}/workflows`; });
  try {
    const r = await api('/namespaces');
    const names = (r.namespaces || []).map((n) => n.namespaceInfo.name);
    clear(sel, names.map((n) => el('option', { value: n, text: n, selected: n === sel.dataset.current })));
  } catch { /* keep the current one */ }
}

// ---------- pages ----------

async function namespacesPage() {
  clear(main, el('h1', { text: 'Namespaces' }));
  try {
    const r = await api('/namespaces');
    const rows = (r.namespaces || []).map((n) => el('tr', {},
      el('td', {}, el('a', { href: `/namespaces/${enc(n.namespaceInfo.name)}/workflows`, text: n.namespaceInfo.name })),
      el('td', { text: (n.namespaceInfo.state || '').replace('NAMESPACE_STATE_', '') }),
      el('td', { text: n.config && n.config.workflowExecutionRetentionTtl }),
      el('td', { text: n.namespaceInfo.description || '' }),
      el('td', { class: 'mono', text: n.namespaceInfo.id })));
    main.append(el('table', { class: 'grid' },
      el('thead', {}, el('tr', {}, ['Name', 'State', 'Retention', 'Description', 'Id'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows)));
  } catch (e) { main.append(errorBox(e)); }
}

function notFoundPage() {
  clear(main, el('h1', { text: 'Not found' }),
    el('p', {}, 'There is no page at ', el('code', { text: body.dataset.path || location.pathname }), '.'),
    el('p', {}, el('a', { href: '/namespaces/default/workflows', text: 'Go to the workflows of the default namespace' })));
}

// ----- workflows list -----

function listFilters() {
  const p = new URLSearchParams(location.search);
  return { status: p.get('status') || '', type: p.get('type') || '', prefix: p.get('prefix') || '', from: p.get('from') || '', to: p.get('to') || '', query: p.get('query') || '' };
}

function filterQuery(f, { withStatus = true } = {}) {
  const parts = [];
  if (withStatus && f.status) parts.push(`ExecutionStatus = ${quote(f.status)}`);
  if (f.type) parts.push(`WorkflowType = ${quote(f.type)}`);
  if (f.prefix) parts.push(`WorkflowId STARTS_WITH ${quote(f.prefix)}`);
  if (f.from) parts.push(`StartTime >= ${quote(new Date(f.from).toISOString())}`);
  if (f.to) parts.push(`StartTime <= ${quote(new Date(f.to).toISOString())}`);
  if (f.query.trim()) parts.push(parts.length ? `(${f.query.trim()})` : f.query.trim());
  return parts.join(' AND ');
}

async function workflowsPage() {
  const f = listFilters();
  const counts = el('div', { class: 'counts', 'aria-label': 'counts per status' });
  const live = el('span', { class: 'live', title: 'new workflows appear without reloading', text: '● live' });
  const tableBody = el('tbody');
  const pager = el('div', { class: 'pager' });
  const msg = el('div');
  const form = el('form', { class: 'filters', id: 'filters' },
    field('Status', el('select', { name: 'status' }, el('option', { value: '', text: 'Any' }), STATUSES.map((s) => el('option', { value: s, text: s, selected: s === f.status })))),
    field('Workflow type', el('input', { name: 'type', value: f.type, placeholder: 'order' })),
    field('Workflow ID starts with', el('input', { name: 'prefix', value: f.prefix })),
    field('Started after', el('input', { name: 'from', type: 'datetime-local', value: f.from })),
    field('Started before', el('input', { name: 'to', type: 'datetime-local', value: f.to })),
    field('Query', el('input', { name: 'query', class: 'wide', value: f.query, placeholder: "WorkflowType = 'order' AND ExecutionStatus = 'Running'" })),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', text: 'Apply' }), el('a', { class: 'button secondary', href: '?', text: 'Clear' })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim()) p.set(k, String(v).trim());
    location.search = p.toString();
  });
  clear(main,
    el('div', { class: 'title-row' }, el('h1', { text: 'Workflows' }), live),
    counts, form, startForm(), batchForm(filterQuery(f)), msg,
    el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'workflows' },
      el('thead', {}, el('tr', {}, ['Status', 'Workflow ID', 'Run ID', 'Type', 'Start', 'End', 'Task queue'].map((h) => el('th', { text: h })))),
      tableBody)),
    pager);

  const query = filterQuery(f);
  let token = '';
  const tokens = [];
  async function load() {
    clear(msg);
    try {
      const p = new URLSearchParams({ pageSize: '50', query });
      if (token) p.set('nextPageToken', token);
      const r = await api(`${nsPath()}/workflows?${p}`);
      clear(tableBody, (r.executions || []).map(row));
      if (!(r.executions || []).length) tableBody.append(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No workflows match.' })));
      clear(pager,
        tokens.length ? el('button', { type: 'button', class: 'secondary', text: '← First page', onclick: () => { tokens.length = 0; token = ''; load(); } }) : null,
        r.nextPageToken ? el('button', { type: 'button', class: 'secondary', id: 'next-page', text: 'Next page →', onclick: () => { tokens.push(token); token = r.nextPageToken; load(); } }) : null);
    } catch (e) {
      clear(tableBody);
      clear(msg, errorBox(e.status === 400 ? new Error(`Invalid query: ${e.message}`) : e));
    }
  }
  async function loadCounts() {
    try {
      const base = filterQuery(f, { withStatus: false });
      const r = await api(`${nsPath()}/workflow-count?${new URLSearchParams({ query: (base ? base + ' ' : '') + 'GROUP BY ExecutionStatus' })}`);
      const by = {};
      for (const g of r.groups || []) by[String(payloadValue(g.groupValues[0]))] = Number(g.count);
      const total = Number(r.count || 0);
      const link = (label, status, n) => {
        const p = new URLSearchParams(location.search);
        if (status) p.set('status', status); else p.delete('status');
        return el('a', { class: `count ${f.status === status ? 'active' : ''}`, href: `?${p}`, 'data-status': status || 'All' }, el('span', { text: label }), el('b', { text: String(n) }));
      };
      clear(counts, link('All', '', total), STATUSES.map((s) => link(s, s, by[s] || 0)));
    } catch { clear(counts); }
  }
  window.reloadList = () => { load(); loadCounts(); };
  await Promise.all([load(), loadCounts()]);
  // Live: the server pushes one event when runs start or close; only then is the page re-read.
  const events = new EventSource('/ui/changes');
  events.addEventListener('changed', () => { if (!token) { load(); loadCounts(); } });
  events.onerror = () => live.classList.add('off');
  events.onopen = () => live.classList.remove('off');
}

function row(x) {
  const wid = x.execution.workflowId, rid = x.execution.runId;
  return el('tr', { 'data-workflow-id': wid },
    el('td', {}, badge(x.status)),
    el('td', {}, el('a', { href: wfUrl(wid, rid), text: wid })),
    el('td', { class: 'mono small', text: rid }),
    el('td', { text: x.type && x.type.name }),
    el('td', { text: time(x.startTime) }),
    el('td', { text: time(x.closeTime) }),
    el('td', {}, x.taskQueue ? el('a', { href: tqUrl(x.taskQueue), text: x.taskQueue }) : ''));
}

function startForm() {
  const out = el('div');
  const form = el('form', { class: 'card', id: 'start-form' },
    field('Workflow type', el('input', { name: 'type', required: true })),
    field('Workflow ID', el('input', { name: 'id', value: `wf-${Date.now().toString(36)}` })),
    field('Task queue', el('input', { name: 'taskQueue', required: true })),
    field('Input (JSON)', el('textarea', { name: 'input', rows: 3, placeholder: '["apple"]' }), 'A JSON array is the argument list; any other JSON value is one argument.'),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', text: 'Start workflow' })), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(form).entries());
    clear(out);
    try {
      const input = argsOf(d.input);
      const r = await api(`${nsPath()}/workflows/${enc(d.id)}`, {
        method: 'POST',
        body: { workflowType: { name: d.type }, taskQueue: { name: d.taskQueue }, input, requestId: uuid(), identity: 'perdure-web-ui' },
      });
      clear(out, el('p', { class: 'ok' }, 'Started ', el('a', { href: wfUrl(d.id, r.runId), text: d.id }), '.'));
    } catch (err) { clear(out, errorBox(err)); }
  });
  return el('details', { class: 'panel' }, el('summary', { text: 'Start a workflow' }), form);
}

function batchForm(defaultQuery) {
  const out = el('div');
  const form = el('form', { class: 'card', id: 'batch-form' },
    field('Operation', el('select', { name: 'op' }, ['terminate', 'cancel', 'signal'].map((o) => el('option', { value: o, text: o })))),
    field('Query', el('input', { name: 'query', class: 'wide', value: defaultQuery || "ExecutionStatus = 'Running'", required: true })),
    field('Reason', el('input', { name: 'reason', value: 'batch from the web UI' })),
    field('Signal name', el('input', { name: 'signal' }), 'for signal'),
    field('Signal input (JSON)', el('textarea', { name: 'input', rows: 2 })),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', text: 'Preview' })), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(form).entries());
    clear(out);
    try {
      const input = argsOf(d.input, 'Signal input');
      if (d.op === 'signal' && !d.signal) throw new Error('A signal operation needs a signal name.');
      const q = d.query.trim();
      const c = await api(`${nsPath()}/workflow-count?${new URLSearchParams({ query: q })}`);
      const n = Number(c.count || 0);
      const confirm = el('button', {
        type: 'button', class: 'danger', id: 'batch-confirm', text: `${d.op} ${n} workflow${n === 1 ? '' : 's'}`,
        onclick: async () => {
          const jobId = uuid();
          const op = { terminate: { terminationOperation: {} }, cancel: { cancellationOperation: {} }, signal: { signalOperation: { signal: d.signal, input } } }[d.op];
          try {
            await api(`${nsPath()}/batch-operations/${enc(jobId)}`, { method: 'POST', body: { visibilityQuery: q, reason: d.reason || 'batch from the web UI', ...op } });
            clear(out, el('p', { class: 'ok', id: 'batch-status', text: `Batch ${jobId} started…` }));
            pollBatch(jobId, out);
          } catch (err) { clear(out, errorBox(err)); }
        },
      });
      clear(out, el('p', {}, `${n} workflow${n === 1 ? '' : 's'} match `, el('code', { text: q }), '. '), confirm);
    } catch (err) { clear(out, errorBox(err)); }
  });
  return el('details', { class: 'panel' }, el('summary', { text: 'Batch: signal, cancel or terminate by query' }), form);
}

async function pollBatch(jobId, out) {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await api(`${nsPath()}/batch-operations/${enc(jobId)}`);
      const state = (r.state || '').replace('BATCH_OPERATION_STATE_', '');
      clear(out, el('p', { class: 'ok', id: 'batch-status', 'data-state': state, text: `Batch ${state.toLowerCase()}: ${r.completeOperationCount || 0} of ${r.totalOperationCount || 0} done, ${r.failureOperationCount || 0} failed.` }));
      if (state && state !== 'RUNNING') { if (window.reloadList) window.reloadList(); return; }
    } catch (err) { clear(out, errorBox(err)); return; }
    await new Promise((res) => setTimeout(res, 500));
  }
}

// ----- workflow page -----

async function workflowPage() {
  const wid = body.dataset.workflowId;
  let rid = body.dataset.runId;
  const tab = body.dataset.tab || 'history';
  clear(main, el('p', { class: 'muted', text: 'Loading…' }));
  let d;
  try {
    const p = rid ? `?${new URLSearchParams({ 'execution.runId': rid })}` : '';
    d = await api(`${nsPath()}/workflows/${enc(wid)}${p}`);
  } catch (e) {
    clear(main, el('h1', { text: wid }), errorBox(e), el('p', {}, el('a', { href: `/namespaces/${enc(NS)}/workflows`, text: '← All workflows' })));
    return;
  }
  const info = d.workflowExecutionInfo;
  if (!rid) {
    rid = info.execution.runId;
    history.replaceState(null, '', wfUrl(wid, rid, tab) + location.search);
  }
  const summary = el('section', { class: 'summary' });
  const io = el('section', { class: 'io' });
  const tabs = el('nav', { class: 'tabs' }, [['history', 'History'], ['timeline', 'Timeline'], ['pending-activities', `Pending activities (${(d.pendingActivities || []).length})`], ['queries', 'Queries']]
    .map(([t, label]) => el('a', { href: wfUrl(wid, rid, t), class: t === tab ? 'active' : '', text: label })));
  const content = el('section', { class: 'tab-content' });
  clear(main,
    el('div', { class: 'title-row' }, el('h1', {}, el('span', { class: 'muted', text: 'Workflow ' }), el('span', { id: 'wf-id', text: wid })), badge(info.status)),
    summary, actions(wid, rid, info), io, tabs, content);

  const events = [];
  fillSummary(summary, d, wid, rid);
  if (tab === 'pending-activities') pendingTab(content, d);
  else if (tab === 'queries') queriesTab(content, wid, rid, info);
  const grow = tab === 'history' ? historyTab(content, events) : null;
  try {
    await loadHistory(wid, rid, events, () => {
      if (grow) grow(false);
      if (!io.childElementCount) fillIo(io, events, summary);
    });
  } catch (e) { content.append(errorBox(e)); return; }
  fillIo(io, events, summary);
  if (grow) grow(true);
  if (tab === 'timeline') timelineTab(content, events);
}

async function loadHistory(wid, rid, events, onProgress) {
  let token = '';
  do {
    const p = new URLSearchParams({ 'execution.runId': rid, maximumPageSize: events.length ? '5000' : '500' });
    if (token) p.set('nextPageToken', token);
    const r = await api(`${nsPath()}/workflows/${enc(wid)}/history?${p}`);
    for (const e of (r.history && r.history.events) || []) events.push(e);
    onProgress(events.length);
    token = r.nextPageToken || '';
  } while (token);
}

function attrsOf(e) {
  const k = Object.keys(e).find((x) => x.endsWith('EventAttributes'));
  return k ? e[k] : {};
}

function fillSummary(summary, d, wid, rid) {
  const info = d.workflowExecutionInfo;
  const parent = info.parentExecution;
  const sa = info.searchAttributes && info.searchAttributes.indexedFields;
  const memo = info.memo && info.memo.fields;
  // The summary and details a client attached to the start (user metadata).
  const md = (d.executionConfig && d.executionConfig.userMetadata) || {};
  const text = (p) => {
    if (!p) return '';
    const v = payloadValue(p);
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  clear(summary, kv([
    ['Summary', text(md.summary)],
    ['Details', md.details ? el('div', { class: 'details', text: text(md.details) }) : ''],
    ['Workflow ID', wid],
    ['Run ID', el('span', { class: 'mono', text: rid })],
    ['Type', info.type && info.type.name],
    ['Status', badge(info.status)],
    ['Start', time(info.startTime)],
    ['Close', info.closeTime ? `${time(info.closeTime)} (${duration(info.startTime, info.closeTime)})` : ''],
    ['Task queue', info.taskQueue ? el('a', { href: tqUrl(info.taskQueue), text: info.taskQueue }) : ''],
    ['History', `${info.historyLength || 0} events, ${info.historySizeBytes || 0} bytes`],
    ['Parent', parent ? el('a', { href: wfUrl(parent.workflowId, parent.runId), text: parent.workflowId }) : ''],
    ['First run', info.firstRunId && info.firstRunId !== rid ? el('a', { href: wfUrl(wid, info.firstRunId), class: 'mono', text: info.firstRunId }) : ''],
    ['Children', (d.pendingChildren || []).length ? el('span', {}, d.pendingChildren.map((c) => el('a', { href: wfUrl(c.workflowId, c.runId), class: 'chip', text: `${c.workflowTypeName} ${c.workflowId}` }))) : ''],
    ['Search attributes', sa && Object.keys(sa).length ? jsonBlock(Object.fromEntries(Object.entries(sa).map(([k, v]) => [k, payloadValue(v)]))) : ''],
    ['Memo', memo && Object.keys(memo).length ? jsonBlock(Object.fromEntries(Object.entries(memo).map(([k, v]) => [k, payloadValue(v)]))) : ''],
  ]));
}

// Payload lists of one value show that value.
function unwrap(list) {
  if (list === undefined) return null;
  return Array.isArray(list) && list.length === 1 ? list[0] : list;
}

function failureView(f) {
  const chain = [];
  for (let c = f; c && chain.length < 20; c = c.cause) chain.push(c);
  return el('div', { class: 'failure' }, chain.map((c, i) => el('div', { class: 'failure-item' },
    el('b', { text: `${i ? 'Caused by: ' : ''}${(c.applicationFailureInfo && c.applicationFailureInfo.type) || Object.keys(c).find((k) => k.endsWith('FailureInfo')) || 'Failure'}` }),
    el('div', { class: 'failure-message', text: c.message || '' }),
    c.stackTrace ? el('details', {}, el('summary', { text: 'Stack trace' }), el('pre', { class: 'json', text: c.stackTrace })) : null)));
}

function fillIo(io, events, summary) {
  const first = events[0];
  const last = events[events.length - 1];
  const started = first ? attrsOf(first) : {};
  const closed = last && /WORKFLOW_EXECUTION_(COMPLETED|FAILED|TIMED_OUT|CANCELED|TERMINATED|CONTINUED_AS_NEW)$/.test(last.eventType) ? last : null;
  const ca = closed ? attrsOf(closed) : {};
  let outcome = el('p', { class: 'muted', text: 'Running: no result yet.' });
  if (closed) {
    if (ca.failure) outcome = failureView(ca.failure);
    else if (closed.eventType.endsWith('COMPLETED')) outcome = jsonBlock(unwrap(ca.result));
    else if (closed.eventType.endsWith('TERMINATED')) outcome = el('p', { text: `Terminated: ${ca.reason || ''}` });
    else if (closed.eventType.endsWith('CONTINUED_AS_NEW')) outcome = el('p', {}, 'Continued as new: ', el('a', { href: wfUrl(body.dataset.workflowId, ca.newExecutionRunId), class: 'mono', text: ca.newExecutionRunId }));
    else outcome = jsonBlock(ca);
  }
  if (started.continuedExecutionRunId && !summary.querySelector('.continued-from')) {
    summary.querySelector('dl').append(el('dt', { class: 'continued-from', text: 'Continued from' }), el('dd', {}, el('a', { href: wfUrl(body.dataset.workflowId, started.continuedExecutionRunId), class: 'mono', text: started.continuedExecutionRunId })));
  }
  clear(io,
    el('div', { class: 'card' }, el('h2', { text: 'Input' }), jsonBlock(unwrap(started.input))),
    el('div', { class: 'card', id: 'outcome' }, el('h2', { text: closed ? shortType(closed.eventType).replace('WorkflowExecution', '') : 'Result' }), outcome));
}

// A virtualised list: only the rows in view exist in the DOM, so 20,000 events scroll freely.
// `items()` is read on every paint, so a list that grows (history pages arriving) just refreshes.
function virtualList(items, renderRow, onPick) {
  const inner = el('div', { class: 'vinner' });
  const box = el('div', { class: 'vlist', tabindex: 0 }, inner);
  let first = -1, count = -1;
  function paint(force) {
    const list = items();
    if (list.length !== count) { count = list.length; inner.style.height = `${count * ROW}px`; force = true; }
    const start = Math.max(0, Math.floor(box.scrollTop / ROW) - 10);
    if (!force && start === first && inner.childElementCount) return;
    first = start;
    const end = Math.min(list.length, start + Math.ceil((box.clientHeight || 600) / ROW) + 20);
    const rows = [];
    for (let i = start; i < end; i++) {
      const r = renderRow(list[i], i);
      r.style.top = `${i * ROW}px`; // CSSOM, which the CSP allows (no style attribute)
      r.classList.add('vrow');
      if (onPick) r.addEventListener('click', () => onPick(list[i], r));
      rows.push(r);
    }
    inner.replaceChildren(...rows);
  }
  box.addEventListener('scroll', () => requestAnimationFrame(() => paint(false)), { passive: true });
  requestAnimationFrame(() => paint(true));
  box.refresh = () => paint(true);
  return box;
}

// The history tab; `events` grows while pages arrive: call the returned function after each.
function historyTab(content, events) {
  const detail = el('div', { class: 'event-detail card' }, el('p', { class: 'muted', text: 'Select a row to see its attributes.' }));
  let compact = compactRows(events);
  const view = el('div', { class: 'history-view' });
  let list = null;
  let mode = new URLSearchParams(location.search).get('view') || 'compact';
  const allButton = el('button', { type: 'button', 'data-mode': 'full', onclick: () => show('full') });
  function show(m) {
    mode = m;
    for (const b of toggle.querySelectorAll('button')) b.classList.toggle('active', b.dataset.mode === m);
    const url = new URL(location.href); url.searchParams.set('view', m); history.replaceState(null, '', url);
    view.className = `history-view ${m}`;
    if (m === 'full') {
      list = virtualList(() => events, (e) => el('div', { class: 'erow', 'data-event-id': e.eventId },
        el('span', { class: 'eid', text: e.eventId }), el('span', { class: 'etime', text: time(e.eventTime) }),
        el('span', { class: 'etype', text: shortType(e.eventType) }), el('span', { class: 'esum', text: eventSummary(e) })),
      (e, r) => { select(r); clear(detail, el('h3', { text: `${e.eventId} · ${shortType(e.eventType)}` }), jsonBlock(e)); });
      clear(view, el('div', { class: 'vhead' }, ['Id', 'Time', 'Type', 'Summary'].map((h) => el('span', { text: h }))), list);
    } else {
      list = virtualList(() => compact, (c) => el('div', { class: `erow step-${c.outcomeClass}` },
        el('span', { class: 'estep', text: c.label }), el('span', { class: 'etime', text: time(c.start) }),
        el('span', { class: 'etime', text: time(c.end) }), el('span', { class: 'eout', text: c.outcome })),
      (c, r) => { select(r); clear(detail, el('h3', { text: c.label }), c.events.map((e) => el('div', {}, el('h4', { text: `${e.eventId} · ${shortType(e.eventType)}` }), jsonBlock(attrsOf(e))))); });
      clear(view, el('div', { class: 'vhead' }, ['Step', 'Start', 'End', 'Outcome'].map((h) => el('span', { text: h }))), list);
    }
  }
  function select(r) { for (const x of view.querySelectorAll('.vrow.selected')) x.classList.remove('selected'); r.classList.add('selected'); }
  const toggle = el('div', { class: 'toggle' },
    el('button', { type: 'button', 'data-mode': 'compact', text: 'Compact', onclick: () => show('compact') }), allButton);
  const status = el('span', { class: 'muted history-status' });
  clear(content, el('div', { class: 'history-bar' }, toggle, status), el('div', { class: 'history-grid' }, view, detail));
  show(mode);
  return (done) => {
    allButton.textContent = `All events (${events.length})`;
    status.textContent = done ? '' : `loading… ${events.length} events so far`;
    if (mode === 'compact') compact = compactRows(events);
    list.refresh();
  };
}

function eventSummary(e) {
  const a = attrsOf(e);
  const bits = [];
  if (a.activityType) bits.push(a.activityType.name);
  if (a.signalName) bits.push(a.signalName);
  if (a.timerId) bits.push(`timer ${a.timerId}`);
  if (a.startToFireTimeout) bits.push(a.startToFireTimeout);
  if (a.workflowType) bits.push(a.workflowType.name);
  if (a.attempt > 1) bits.push(`attempt ${a.attempt}`);
  if (a.failure) bits.push(a.failure.message);
  if (a.reason) bits.push(a.reason);
  if (a.identity) bits.push(a.identity);
  return bits.join(' · ');
}

// One row per step: each activity, timer, child, signal, update and the workflow's own ends.
function compactRows(events) {
  const rows = [];
  const byScheduled = new Map();
  const open = (key, row) => { byScheduled.set(key, row); rows.push(row); };
  for (const e of events) {
    const a = attrsOf(e);
    const t = e.eventType.replace('EVENT_TYPE_', '');
    const mk = (label, kind) => ({ label, start: e.eventTime, end: '', outcome: 'Pending', outcomeClass: 'pending', kind, events: [e] });
    if (t === 'ACTIVITY_TASK_SCHEDULED') open(`a${e.eventId}`, mk(`Activity ${a.activityType.name} (${a.activityId})`, 'activity'));
    else if (t === 'TIMER_STARTED') open(`t${a.timerId}`, mk(`Timer ${a.timerId} (${a.startToFireTimeout})`, 'timer'));
    else if (t === 'START_CHILD_WORKFLOW_EXECUTION_INITIATED') open(`c${e.eventId}`, mk(`Child ${a.workflowType.name} ${a.workflowId}`, 'child'));
    else if (t === 'WORKFLOW_EXECUTION_SIGNALED') rows.push({ ...mk(`Signal ${a.signalName}`, 'signal'), end: e.eventTime, outcome: 'Received', outcomeClass: 'ok' });
    else if (t === 'WORKFLOW_EXECUTION_UPDATE_ACCEPTED') open(`u${a.protocolInstanceId}`, mk(`Update ${(a.acceptedRequest && a.acceptedRequest.input && a.acceptedRequest.input.name) || ''}`, 'update'));
    else if (t === 'MARKER_RECORDED') rows.push({ ...mk(`Marker ${a.markerName}`, 'marker'), end: e.eventTime, outcome: 'Recorded', outcomeClass: 'ok' });
    else if (t === 'WORKFLOW_EXECUTION_STARTED') rows.push({ ...mk(`Workflow ${a.workflowType.name} started`, 'workflow'), end: e.eventTime, outcome: 'Started', outcomeClass: 'ok' });
    else if (/^WORKFLOW_EXECUTION_(COMPLETED|FAILED|TIMED_OUT|CANCELED|TERMINATED|CONTINUED_AS_NEW|CANCEL_REQUESTED)$/.test(t)) {
      const bad = /FAILED|TIMED_OUT|TERMINATED/.test(t);
      rows.push({ ...mk(`Workflow ${shortType(e.eventType).replace('WorkflowExecution', '').toLowerCase()}`, 'workflow'), end: e.eventTime, outcome: shortType(e.eventType).replace('WorkflowExecution', ''), outcomeClass: bad ? 'bad' : 'ok' });
    } else {
      let key = null;
      if (t.startsWith('ACTIVITY_TASK_')) key = `a${a.scheduledEventId}`;
      else if (t.startsWith('TIMER_')) key = `t${a.timerId}`;
      else if (t.startsWith('CHILD_WORKFLOW_') || t === 'START_CHILD_WORKFLOW_EXECUTION_FAILED') key = `c${a.initiatedEventId}`;
      else if (t.startsWith('WORKFLOW_EXECUTION_UPDATE_')) key = `u${a.protocolInstanceId}`;
      const r = key && byScheduled.get(key);
      if (!r) continue;
      r.events.push(e);
      const outcome = shortType(e.eventType).replace(/^(ActivityTask|Timer|ChildWorkflowExecution|WorkflowExecutionUpdate|StartChildWorkflowExecution)/, '');
      if (t.endsWith('_STARTED') && r.kind === 'activity') { r.attempt = a.attempt || 1; r.outcome = `Running (attempt ${r.attempt})`; continue; }
      if (t.endsWith('_STARTED') && r.kind === 'child') { r.outcome = 'Running'; continue; }
      r.end = e.eventTime;
      // The attempt that ended the step: on the end event (timeouts) or on its start.
      const attempt = a.attempt || r.attempt || 1;
      r.outcome = outcome + (attempt > 1 ? ` (attempt ${attempt})` : '');
      r.outcomeClass = /Failed|TimedOut|Terminated|Canceled/.test(outcome) ? 'bad' : 'ok';
    }
  }
  // Steps still open when the run closed never finished: "Unfinished", not "Pending".
  const last = events[events.length - 1];
  if (last && /^EVENT_TYPE_WORKFLOW_EXECUTION_(COMPLETED|FAILED|TIMED_OUT|CANCELED|TERMINATED|CONTINUED_AS_NEW)$/.test(last.eventType)) {
    for (const r of rows) if (r.outcomeClass === 'pending') { r.outcome = 'Unfinished'; r.outcomeClass = 'bad'; }
  }
  return rows;
}

function timelineTab(content, events) {
  const steps = compactRows(events).filter((r) => r.kind === 'activity' || r.kind === 'timer' || r.kind === 'child');
  if (!steps.length) { clear(content, el('p', { class: 'muted', text: 'No activities, timers or children yet.' })); return; }
  const t0 = new Date(events[0].eventTime).getTime();
  const tEnd = Math.max(Date.now() * (events[events.length - 1].eventType.includes('WORKFLOW_EXECUTION_') ? 0 : 1), ...events.map((e) => new Date(e.eventTime).getTime()));
  const span = Math.max(1, tEnd - t0);
  const shown = steps.slice(0, 1000);
  clear(content,
    el('p', { class: 'muted', text: `From ${time(events[0].eventTime)}, ${duration(new Date(t0).toISOString(), new Date(tEnd).toISOString())} in all${steps.length > shown.length ? `; first ${shown.length} of ${steps.length} steps` : ''}.` }),
    el('div', { class: 'timeline' }, shown.map((s) => {
      const a = new Date(s.start).getTime() - t0;
      const b = (s.end ? new Date(s.end).getTime() : tEnd) - t0;
      const bar = el('div', { class: `bar ${s.kind} step-${s.outcomeClass}`, title: `${s.label}: ${s.outcome}` });
      bar.style.left = `${(a / span) * 100}%`;
      bar.style.width = `${Math.max(0.4, ((b - a) / span) * 100)}%`;
      return el('div', { class: 'tl-row' }, el('span', { class: 'tl-label', text: s.label }), el('div', { class: 'tl-track' }, bar), el('span', { class: 'tl-out', text: s.outcome }));
    })));
}

function pendingTab(content, d) {
  const acts = d.pendingActivities || [];
  const kids = d.pendingChildren || [];
  clear(content,
    acts.length ? acts.map((p) => el('div', { class: 'card pending-activity', 'data-activity-id': p.activityId },
      el('h3', {}, `${p.activityType && p.activityType.name} `, el('span', { class: 'muted', text: `(${p.activityId})` }), ' ', el('span', { class: 'badge', text: (p.state || '').replace('PENDING_ACTIVITY_STATE_', '') })),
      kv([
        ['Attempt', `${p.attempt || 1}${p.maximumAttempts ? ` of ${p.maximumAttempts}` : ' (unlimited)'}`],
        ['Scheduled', time(p.scheduledTime)],
        ['Last started', time(p.lastStartedTime)],
        ['Last attempt ended', time(p.lastAttemptCompleteTime)],
        ['Next retry', p.nextAttemptScheduleTime ? time(p.nextAttemptScheduleTime) : ''],
        ['Expires', time(p.expirationTime)],
        ['Last heartbeat', time(p.lastHeartbeatTime)],
        ['Heartbeat details', p.heartbeatDetails ? jsonBlock(p.heartbeatDetails) : ''],
        ['Last worker', p.lastWorkerIdentity],
        ['Last failure', p.lastFailure ? failureView(p.lastFailure) : ''],
      ]))) : el('p', { class: 'muted', text: 'No pending activities.' }),
    kids.length ? [el('h2', { text: 'Pending children' }), el('ul', {}, kids.map((c) => el('li', {}, el('a', { href: wfUrl(c.workflowId, c.runId), text: `${c.workflowTypeName} ${c.workflowId}` }))))] : null);
}

function queriesTab(content, wid, rid, info) {
  const out = el('div', { id: 'query-result' });
  const select = el('select', { name: 'queryType', id: 'query-type' });
  const free = el('input', { name: 'freeName', placeholder: 'or type a query name' });
  const args = el('textarea', { name: 'args', rows: 3, placeholder: '[]' });
  const note = el('p', { class: 'muted', text: 'Asking the workflow which queries it has…' });
  const form = el('form', { class: 'card', id: 'query-form' }, note, field('Query', select), field('Other name', free), field('Arguments (JSON)', args, 'A JSON array is the argument list.'),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', text: 'Run query' })));
  clear(content, form, out);
  const run = async (name, queryArgs) => api(`${nsPath()}/workflows/${enc(wid)}/query/${enc(name)}`, {
    method: 'POST', timeoutMs: QUERY_WAIT_MS,
    body: { execution: { runId: rid }, query: { queryArgs } },
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = free.value.trim() || select.value;
    clear(out, el('p', { class: 'muted', text: `Running ${name}…` }));
    try {
      if (!name) throw new Error('Choose or type a query name.');
      const r = await run(name, argsOf(args.value, 'Arguments'));
      if (r.queryRejected) clear(out, errorBox(new Error(`Rejected: the workflow is ${statusName(r.queryRejected.status)}`)));
      else clear(out, el('h3', { text: name }), jsonBlock((r.queryResult || []).length === 1 ? r.queryResult[0] : r.queryResult));
    } catch (err) {
      if (err.status === 0) err = new Error(`${err.message}: no worker answered. Is a worker polling task queue ${info.taskQueue}?`);
      clear(out, errorBox(err));
    }
  });
  // Without a worker a query waits for one: say so at once instead of after the wait.
  api(`${nsPath()}/task-queues/${enc(info.taskQueue)}?taskQueueType=TASK_QUEUE_TYPE_WORKFLOW`).then((r) => {
    if (!(r.pollers || []).length) {
      form.prepend(el('p', { class: 'error', id: 'no-worker', text: `No worker is polling task queue ${info.taskQueue}: a query waits up to ${QUERY_WAIT_MS / 1000} s for one.` }));
    }
  }).catch(() => {});
  run('__temporal_workflow_metadata').then((r) => {
    const def = (payloadValue((r.queryResult || [])[0]) || {}).definition || {};
    const names = (def.queryDefinitions || []).map((q) => q.name).filter((n) => n && !n.startsWith('__'));
    clear(select, names.map((n) => el('option', { value: n, text: n })));
    note.textContent = names.length ? `The workflow (${def.type || info.type.name}) answers these queries.` : 'The workflow declares no queries; type a name.';
  }).catch(() => {
    clear(select, el('option', { value: '__stack_trace', text: '__stack_trace' }));
    note.textContent = 'The worker does not list its queries (or no worker is polling): type a query name.';
  });
}

function actions(wid, rid, info) {
  const running = statusName(info.status) === 'Running';
  const out = el('div', { class: 'action-out' });
  const exec = { workflowId: wid, runId: rid };
  const doIt = async (what, fn) => {
    clear(out);
    try { await fn(); toast(`${what}: done`); setTimeout(() => location.reload(), 600); } catch (err) { clear(out, errorBox(err)); }
  };
  const signal = el('form', { class: 'card', id: 'signal-form' },
    field('Signal name', el('input', { name: 'name', required: true })),
    field('Input (JSON)', el('textarea', { name: 'input', rows: 2 })),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', text: 'Send signal' })));
  signal.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(signal).entries());
    doIt('Signal', () => api(`${nsPath()}/workflows/${enc(wid)}/signal/${enc(d.name)}`, { method: 'POST', body: { workflowExecution: exec, input: argsOf(d.input), identity: 'perdure-web-ui', requestId: uuid() } }));
  });
  const terminate = el('form', { class: 'card', id: 'terminate-form' },
    field('Reason', el('input', { name: 'reason', value: 'terminated from the web UI' })),
    el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'confirm', required: true }), 'I want to terminate this workflow'),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'danger', text: 'Terminate' })));
  terminate.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(terminate).entries());
    doIt('Terminate', () => api(`${nsPath()}/workflows/${enc(wid)}/terminate`, { method: 'POST', body: { workflowExecution: exec, reason: d.reason, identity: 'perdure-web-ui' } }));
  });
  const cancel = el('button', { type: 'button', class: 'secondary', id: 'cancel-button', text: 'Request cancellation',
    onclick: () => { if (window.confirm('Request cancellation of this workflow?')) doIt('Cancel', () => api(`${nsPath()}/workflows/${enc(wid)}/cancel`, { method: 'POST', body: { workflowExecution: exec, identity: 'perdure-web-ui', requestId: uuid() } })); } });
  const resetPoint = el('select', { name: 'eventId', id: 'reset-event' });
  const reset = el('form', { class: 'card', id: 'reset-form' },
    field('Reset to (workflow task completed)', resetPoint),
    field('Reason', el('input', { name: 'reason', value: 'reset from the web UI' })),
    el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'confirm', required: true }), 'Start a new run from this point'),
    el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'danger', text: 'Reset' })));
  reset.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(reset).entries());
    clear(out);
    api(`${nsPath()}/workflows/${enc(wid)}/reset`, { method: 'POST', body: { workflowExecution: exec, reason: d.reason, workflowTaskFinishEventId: d.eventId, requestId: uuid() } })
      .then((r) => { location.href = wfUrl(wid, r.runId); })
      .catch((err) => clear(out, errorBox(err)));
  });
  const resetDetails = el('details', { class: 'panel' }, el('summary', { text: 'Reset' }), reset);
  resetDetails.addEventListener('toggle', async () => {
    if (!resetDetails.open || resetPoint.childElementCount) return;
    const events = [];
    try { await loadHistory(wid, rid, events, () => {}); } catch (err) { clear(out, errorBox(err)); return; }
    clear(resetPoint, events.filter((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED')
      .map((e) => el('option', { value: e.eventId, text: `${e.eventId} · ${time(e.eventTime)}` })));
  });
  return el('div', { class: 'actions' },
    running ? el('details', { class: 'panel' }, el('summary', { text: 'Signal' }), signal) : null,
    running ? cancel : null,
    running ? el('details', { class: 'panel' }, el('summary', { text: 'Terminate' }), terminate) : null,
    resetDetails, out);
}

// ----- task queue -----

async function taskQueuePage() {
  const tq = body.dataset.taskQueue;
  clear(main, el('h1', {}, el('span', { class: 'muted', text: 'Task queue ' }), tq));
  for (const [type, label] of [['TASK_QUEUE_TYPE_WORKFLOW', 'Workflow pollers'], ['TASK_QUEUE_TYPE_ACTIVITY', 'Activity pollers']]) {
    try {
      const r = await api(`${nsPath()}/task-queues/${enc(tq)}?${new URLSearchParams({ taskQueueType: type, reportStats: 'true' })}`);
      const pollers = r.pollers || [];
      const stats = r.stats || (r.taskQueueStatus ? { approximateBacklogCount: r.taskQueueStatus.backlogCountHint } : null);
      main.append(el('section', { class: 'card' }, el('h2', { text: label }),
        stats ? el('p', { text: `Backlog: ${stats.approximateBacklogCount || 0} task(s)${stats.approximateBacklogAge ? `, oldest ${stats.approximateBacklogAge}` : ''}` }) : null,
        pollers.length ? el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Identity', 'Last access', 'Rate per second'].map((h) => el('th', { text: h })))),
          el('tbody', {}, pollers.map((p) => el('tr', {}, el('td', { text: p.identity }), el('td', { text: time(p.lastAccessTime) }), el('td', { text: p.ratePerSecond || '' })))))
          : el('p', { class: 'muted', text: 'No pollers in the last minutes.' })));
    } catch (e) { main.append(errorBox(e)); }
  }
}

// ---------- start ----------

namespaceSwitcher();
({
  namespaces: namespacesPage,
  workflows: workflowsPage,
  workflow: workflowPage,
  'task-queue': taskQueuePage,
  'not-found': notFoundPage,
}[body.dataset.page] || notFoundPage)();
