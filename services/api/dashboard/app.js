// Novalog's web console. Plain JavaScript, no build step: it signs in
// with Identity v3 on this listener, then calls the compute API
// (/v2.1), billing (/billing/v1) and the console's own reads
// (/dashboard/api) with the token. Everything it shows comes from this
// listener; the only third-party code is the chart library, served from
// here too.
'use strict';

const SESSION_KEY = 'novalog.session';
const state = {
  session: null,   // {token, expires_at, user, project_id, project_name, roles, admin}
  rows: new Map(), // server id -> row, kept by the event stream
  stream: null,    // AbortController of the event stream
  expiry: null,    // timer that ends the session with its token
  page: null,      // {name, id?, onRows?}
  chart: null,
};

// ---------- small helpers ----------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const $ = (sel, root) => (root || document).querySelector(sel);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fmtTime(ms) {
  if (ms === null || ms === undefined) return '';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 23);
}

function fmtDuration(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function say(text, kind) {
  const s = $('#status');
  s.textContent = text || '';
  s.className = 'status' + (kind ? ' ' + kind : '');
}

function isAdmin() {
  return !!(state.session && state.session.admin);
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The message of an error body in any of the shapes this listener uses
// (Nova's {"conflictingRequest": {"message": ...}}, Keystone's
// {"error": {"message": ...}}).
function errorMessage(body, status) {
  if (body && typeof body === 'object') {
    for (const v of Object.values(body)) {
      if (v && typeof v === 'object' && v.message) return v.message;
    }
  }
  return `HTTP ${status}`;
}

async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ Accept: 'application/json' }, extraHeaders || {});
  if (state.session) headers['X-Auth-Token'] = state.session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401 && state.session) {
    endSession('Your session has expired; please sign in again.');
    throw new ApiError(401, 'session expired');
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, errorMessage(json, resp.status));
  return { status: resp.status, headers: resp.headers, body: json, text };
}

// ---------- session ----------

async function login(user, password, project, domain) {
  const body = {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, domain: { name: domain }, password } },
      },
      scope: { project: { name: project, domain: { name: domain } } },
    },
  };
  const r = await api('POST', '/identity/v3/auth/tokens', body);
  const token = r.headers.get('X-Subject-Token');
  const t = r.body.token;
  const roles = (t.roles || []).map((x) => x.name);
  startSession({
    token,
    expires_at: t.expires_at,
    user: t.user.name,
    project_id: t.project.id,
    project_name: t.project.name,
    roles,
    admin: roles.includes('admin'),
  });
}

// Keystone's times carry microseconds; Date.parse is only sure of milliseconds.
function expiresMs(s) {
  return Date.parse(String(s.expires_at).replace(/(\.\d{3})\d+/, '$1'));
}

function startSession(s) {
  state.session = s;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  const left = expiresMs(s) - Date.now();
  clearTimeout(state.expiry);
  state.expiry = setTimeout(
    () => endSession('Your session has expired; please sign in again.'),
    Math.max(0, Math.min(left, 2 ** 31 - 1)),
  );
  $('#who-text').textContent = `${s.user} · project ${s.project_name}` + (s.admin ? ' · admin' : '');
  $('#who').hidden = false;
  $('#nav').hidden = false;
  applyRole();
  follow();
}

async function logout() {
  if (state.session) {
    try {
      await api('DELETE', '/identity/v3/auth/tokens', undefined, {
        'X-Subject-Token': state.session.token,
      });
    } catch (_) {
      // The token may already be gone; signing out goes on.
    }
  }
  endSession('Signed out.');
}

function endSession(message) {
  if (state.stream) state.stream.abort();
  state.stream = null;
  clearTimeout(state.expiry);
  state.session = null;
  state.rows.clear();
  sessionStorage.removeItem(SESSION_KEY);
  $('#who').hidden = true;
  $('#nav').hidden = true;
  setLive(false);
  if (location.hash !== '#/login') location.hash = '#/login';
  else render();
  say(message || '');
}

function restoreSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (s && expiresMs(s) > Date.now()) startSession(s);
  } catch (_) {
    sessionStorage.removeItem(SESSION_KEY);
  }
}

// Shows what is for administrators only to administrators.
function applyRole(root) {
  for (const e of (root || document).querySelectorAll('[data-admin]')) e.hidden = !isAdmin();
}

// ---------- the live server list: server-sent events ----------

function setLive(on) {
  const l = $('#live');
  l.textContent = on ? 'live' : 'offline';
  l.className = 'live' + (on ? ' on' : '');
}

// Reads /dashboard/api/events (text/event-stream) with the token in a
// header, which EventSource cannot send; reconnects after a drop.
async function follow() {
  if (state.stream) state.stream.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  while (state.session && !ctrl.signal.aborted) {
    try {
      const resp = await fetch('/dashboard/api/events', {
        headers: { 'X-Auth-Token': state.session.token, Accept: 'text/event-stream' },
        signal: ctrl.signal,
      });
      if (resp.status === 401) {
        endSession('Your session has expired; please sign in again.');
        return;
      }
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      setLive(true);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          onEvent(block);
        }
      }
    } catch (_) {
      if (ctrl.signal.aborted) return;
    }
    setLive(false);
    await sleep(2000);
  }
}

function onEvent(block) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const at = line.indexOf(':');
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  const msg = JSON.parse(data.join('\n'));
  const changed = new Set();
  if (type === 'snapshot') {
    state.rows.clear();
    for (const s of msg.servers) state.rows.set(s.id, s);
    changed.add('*');
  } else if (type === 'changes') {
    for (const s of msg.servers) {
      state.rows.set(s.id, s);
      changed.add(s.id);
    }
    for (const id of msg.deleted) {
      state.rows.delete(id);
      changed.add(id);
    }
  } else if (type === 'expired') {
    endSession('Your session has expired; please sign in again.');
    return;
  }
  if (state.page && state.page.onRows) state.page.onRows(changed);
}

// ---------- pages ----------

function mount(id) {
  const main = $('#main');
  main.replaceChildren($(id).content.cloneNode(true));
  applyRole(main);
  return main;
}

function render() {
  if (state.chart) {
    state.chart.destroy();
    state.chart = null;
  }
  const [, name, id] = (location.hash || '#/servers').split('/');
  if (!state.session) {
    state.page = { name: 'login' };
    return pageLogin();
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === (name === 'server' ? 'servers' : name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  state.page = { name, id };
  switch (name) {
    case 'servers':
      return id ? pageServer(decodeURIComponent(id)) : pageServers();
    case 'hosts':
      return pageHosts();
    case 'usage':
      return pageUsage();
    case 'audit':
      return pageAudit(id ? decodeURIComponent(id) : '');
    default:
      location.hash = '#/servers';
  }
}

function pageLogin() {
  const main = mount('#tpl-login');
  const form = $('#login-form', main);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('#login-error').textContent = '';
    const f = new FormData(form);
    try {
      await login(f.get('user'), f.get('password'), f.get('project'), f.get('domain'));
      say('');
      // A new hash renders through hashchange; the same one needs a call.
      if (location.hash !== '#/servers') location.hash = '#/servers';
      else render();
    } catch (e) {
      $('#login-error').textContent =
        e.status === 401 ? 'The user, password or project is not right.' : e.message;
    }
  });
  $('#login-user', main).focus();
}

// The servers page: the live list, its filters and the create form.
function pageServers() {
  const main = mount('#tpl-servers');
  const draw = () => drawServers(main);
  for (const id of ['#f-name', '#f-status', '#f-project']) {
    $(id, main).addEventListener('input', draw);
  }
  $('#filters', main).addEventListener('submit', (e) => e.preventDefault());
  state.page.onRows = draw;
  draw();
  fillCreateForm(main);
  $('#create-form', main).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    await createServer(main);
  });
}

function drawServers(main) {
  const name = $('#f-name', main).value.trim().toLowerCase();
  const status = $('#f-status', main).value;
  const project = $('#f-project', main).value.trim();
  const rows = [...state.rows.values()]
    .filter((r) => !name || r.name.toLowerCase().includes(name))
    .filter((r) => !status || r.status === status)
    .filter((r) => !project || r.project_id.includes(project))
    .sort((a, b) => b.created_ms - a.created_ms || a.name.localeCompare(b.name));
  const body = $('#servers-body', main);
  body.replaceChildren(
    ...rows.map((r) =>
      el('tr', { 'data-id': r.id, 'data-name': r.name },
        el('td', {}, el('a', { href: `#/servers/${r.id}` }, r.name || r.id)),
        el('td', { 'data-col': 'status', class: 'st st-' + r.status.toLowerCase() }, r.status),
        el('td', { 'data-col': 'task' }, r.task_state || ''),
        el('td', { 'data-col': 'power' }, r.power_state),
        el('td', {}, r.flavor),
        el('td', {}, r.image),
        el('td', {}, r.availability_zone || ''),
        isAdmin() ? el('td', {}, r.project_id) : null,
        isAdmin() ? el('td', {}, r.host || '') : null,
        r.fault ? el('td', { class: 'fault' }, r.fault) : null,
      ),
    ),
  );
  $('#servers-empty', main).hidden = rows.length > 0;
}

async function fillCreateForm(main) {
  const opt = (value, text) => el('option', { value }, text);
  // Each list on its own: one that cannot be read leaves the others.
  const load = (path, fill) =>
    api('GET', path)
      .then((r) => fill(r.body))
      .catch((e) => {
        $('#create-error', main).textContent = `Cannot load ${path}: ${e.message}`;
      });
  await Promise.all([
    load('/v2.1/flavors/detail', (b) =>
      $('#c-flavor', main).replaceChildren(
        ...b.flavors
          .sort((x, y) => x.ram - y.ram)
          .map((f) => opt(f.id, `${f.name} (${f.vcpus} vCPU, ${f.ram} MB, ${f.disk} GB)`)),
      )),
    load('/v2.1/images', (b) =>
      $('#c-image', main).replaceChildren(...b.images.map((i) => opt(i.id, i.name)))),
    load('/v2.1/os-keypairs', (b) =>
      $('#c-key', main).append(...b.keypairs.map((k) => opt(k.keypair.name, k.keypair.name)))),
    load('/v2.1/os-server-groups', (b) =>
      $('#c-group', main).append(
        ...b.server_groups.map((g) => opt(g.id, `${g.name} (${(g.policies || [g.policy]).join(', ')})`)),
      )),
    load('/v2.1/os-availability-zone', (b) =>
      $('#c-az', main).append(...b.availabilityZoneInfo.map((z) => opt(z.zoneName, z.zoneName)))),
  ]);
}

async function createServer(main) {
  const err = $('#create-error', main);
  err.textContent = '';
  const server = {
    name: $('#c-name', main).value.trim(),
    flavorRef: $('#c-flavor', main).value,
    imageRef: $('#c-image', main).value,
    networks: 'none',
  };
  const key = $('#c-key', main).value;
  const az = $('#c-az', main).value;
  const group = $('#c-group', main).value;
  if (key) server.key_name = key;
  if (az) server.availability_zone = az;
  const body = { server };
  if (group) body['os:scheduler_hints'] = { group };
  const button = $('#create-submit', main);
  button.disabled = true;
  try {
    const r = await api('POST', '/v2.1/servers', body, { 'OpenStack-API-Version': 'compute 2.37' });
    say(`Server ${server.name} is being created (${r.body.server.id}).`);
    $('#c-name', main).value = '';
  } catch (e) {
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// A server's page: details, actions, console log and timeline, all
// redrawn when the event stream says the server changed.
function pageServer(id) {
  const main = mount('#tpl-server');
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (state.page && state.page.id === id) {
        drawServer(main, id);
      }
    }, 300);
  };
  state.page.onRows = (changed) => {
    if (changed.has('*') || changed.has(id)) refresh();
  };
  $('#console-load', main).addEventListener('click', () => loadConsole(main, id));
  $('#vnc-open', main).addEventListener('click', () => openVnc(id));
  drawServer(main, id);
}

async function drawServer(main, id) {
  let info;
  try {
    info = (await api('GET', `/dashboard/api/servers/${encodeURIComponent(id)}/actions`)).body;
  } catch (e) {
    $('#server-title', main).textContent = 'Server not found';
    say(e.message, 'bad');
    return;
  }
  const s = info.server;
  $('#server-title', main).textContent = `Server ${s.name}`;
  const fields = [
    ['ID', s.id],
    ['Status', s.status],
    ['vm_state', s.vm_state],
    ['task_state', s.task_state || '-'],
    ['power_state', s.power_state],
    ['Flavor', s.flavor],
    ['Image', s.image],
    ['Availability zone', s.availability_zone || '-'],
    ['Key pair', s.key_name || '-'],
    ['Project', s.project_id],
    ['Host', s.host],
    ['Locked', s.locked ? 'yes' : 'no'],
    ['Created', fmtTime(s.created_ms)],
    ['Updated', fmtTime(s.updated_ms)],
    ['Fault', s.fault],
  ].filter(([, v]) => v !== undefined && v !== null);
  $('#server-details', main).replaceChildren(
    ...fields.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-field': k }, v)]),
  );
  $('#server-actions', main).replaceChildren(
    ...info.actions.map((a) =>
      el('button', {
        type: 'button',
        'data-action': a.name,
        'aria-disabled': a.allowed ? 'false' : 'true',
        title: a.allowed ? a.label : a.reason,
        class: a.name === 'delete' ? 'danger' : null,
        onclick: () => act(main, s, a),
      }, a.label),
    ),
  );
  drawTimeline(main, id);
}

async function act(main, server, action) {
  if (!action.allowed) {
    say(action.reason, 'bad');
    return;
  }
  try {
    if (action.name === 'delete') {
      const dialog = $('#delete-dialog', main);
      $('#delete-text', main).textContent = `Server ${server.name} (${server.id}) will be deleted.`;
      dialog.returnValue = '';
      dialog.showModal();
      const answer = await new Promise((r) => dialog.addEventListener('close', () => r(dialog.returnValue), { once: true }));
      if (answer !== 'confirm') return;
      await api('DELETE', `/v2.1/servers/${server.id}`);
      say(`Server ${server.name} is being deleted.`);
      location.hash = '#/servers';
      return;
    }
    await api('POST', `/v2.1/servers/${server.id}/action`, action.body);
    say(`${action.label}: requested for ${server.name}.`);
  } catch (e) {
    say(`${action.label} refused: ${e.message}`, 'bad');
  }
}

async function loadConsole(main, id) {
  const pre = $('#console-log', main);
  pre.hidden = false;
  try {
    const r = await api('POST', `/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': { length: 200 } });
    pre.textContent = (r.body && r.body.output) || '(empty)';
  } catch (e) {
    pre.textContent = `The console log is not available: ${e.message}`;
  }
}

// A remote console (2.6): the console proxy's noVNC page, in a new tab.
async function openVnc(id) {
  try {
    const r = await api(
      'POST',
      `/v2.1/servers/${id}/remote-consoles`,
      { remote_console: { protocol: 'vnc', type: 'novnc' } },
      { 'OpenStack-API-Version': 'compute 2.6' },
    );
    window.open(r.body.remote_console.url, '_blank', 'noopener');
  } catch (e) {
    say(`The VNC console is not available: ${e.message}`, 'bad');
  }
}

async function drawTimeline(main, id) {
  let t;
  try {
    t = (await api('GET', `/dashboard/api/servers/${encodeURIComponent(id)}/timeline`)).body;
  } catch (e) {
    say(`Cannot read the timeline: ${e.message}`, 'bad');
    return;
  }
  const events = t.events;
  const t0 = events.length ? events[0].at_ms : t.now_ms;
  const lastEvent = events.length ? events[events.length - 1].at_ms : t0;
  const end = Math.max(lastEvent, ...t.steps.map((s) => s.end_ms || t.now_ms), t0 + 1);
  const span = end - t0;
  $('#gantt', main).replaceChildren(
    ...t.steps.map((s) => {
      const left = ((s.start_ms - t0) / span) * 100;
      const width = Math.max((s.duration_ms / span) * 100, 0.6);
      const label = `${s.name} ${fmtDuration(s.duration_ms)}${s.outcome === 'done' ? '' : ' (' + s.outcome + ')'}`;
      const bar = el('span', { class: `bar outcome-${s.outcome}`, title: `${label}, ${s.request_id}` });
      bar.style.left = `${Math.min(left, 99.4)}%`;
      bar.style.width = `${Math.min(width, 100 - Math.min(left, 99.4))}%`;
      return el('div', { class: 'step', role: 'listitem', 'data-step': s.name, 'data-outcome': s.outcome },
        el('span', { class: 'step-label' }, label),
        el('span', { class: 'track' }, bar),
      );
    }),
  );
  $('#timeline-body', main).replaceChildren(
    ...events.map((e) =>
      el('tr', { 'data-type': e.type, 'data-task': e.task_state || '', class: 'mark-' + e.mark },
        el('td', {}, fmtTime(e.at_ms)),
        el('td', { class: 'num' }, ((e.at_ms - t0) / 1000).toFixed(3)),
        el('td', {}, e.topic),
        el('td', {}, e.type, e.mark === 'normal' ? null : el('span', { class: 'badge' }, e.mark)),
        el('td', {}, `${e.actor.user_id}/${e.actor.project_id}`),
        el('td', {}, el('a', { href: `#/audit/${encodeURIComponent(e.request_id)}` }, e.request_id)),
        el('td', {}, e.vm_state || ''),
        el('td', {}, e.task_state || ''),
        el('td', {}, e.power_state || ''),
      ),
    ),
  );
}

// The hosts page (administrators).
async function pageHosts() {
  const main = mount('#tpl-hosts');
  if (!isAdmin()) {
    main.replaceChildren(el('p', { class: 'error', role: 'alert' }, 'The hosts page is for administrators.'));
    return;
  }
  await drawHosts(main);
}

async function drawHosts(main) {
  let h;
  try {
    h = (await api('GET', '/dashboard/api/hosts')).body;
  } catch (e) {
    say(e.message, 'bad');
    return;
  }
  $('#hosts-ratios', main).textContent =
    `Allocation ratios: vCPU ${h.ratios.cpu}, RAM ${h.ratios.ram}, disk ${h.ratios.disk}. ` +
    'Each bar is what is used against what may be allocated (capacity × ratio).';
  const meter = (r) =>
    el('span', { class: 'res' },
      el('meter', { min: 0, max: Math.max(r.allocatable, 1), value: r.used, title: `${r.used} of ${r.allocatable}` }),
      ` ${r.used} / ${r.allocatable} (${r.total} × ${r.ratio})`);
  $('#hosts-body', main).replaceChildren(
    ...h.hosts.map((x) =>
      el('tr', { 'data-host': x.name, class: x.status === 'disabled' ? 'disabled' : null },
        el('th', { scope: 'row' }, x.name),
        el('td', {}, x.availability_zone),
        el('td', {}, x.aggregates.join(', ')),
        el('td', { 'data-col': 'state', class: 'st st-' + x.state }, x.state),
        el('td', { 'data-col': 'status', class: 'st st-' + x.status }, x.status, x.disabled_reason ? ` (${x.disabled_reason})` : ''),
        el('td', {}, meter(x.vcpus)),
        el('td', {}, meter(x.memory_mb)),
        el('td', {}, meter(x.disk_gb)),
        el('td', { class: 'num' }, x.instances),
        el('td', {},
          el('button', {
            type: 'button',
            'data-host-action': x.status === 'disabled' ? 'enable' : 'disable',
            onclick: () => setHost(main, x.name, x.status === 'disabled' ? 'enable' : 'disable'),
          }, x.status === 'disabled' ? 'Enable' : 'Disable'),
        ),
      ),
    ),
  );
  return h.hosts;
}

async function setHost(main, host, how) {
  try {
    const body = { host, binary: 'nova-compute' };
    if (how === 'disable') body.disabled_reason = 'disabled from the console';
    await api('PUT', `/v2.1/os-services/${how === 'disable' ? 'disable-log-reason' : 'enable'}`, body);
    say(`Host ${host} ${how}d.`);
  } catch (e) {
    say(`Cannot ${how} ${host}: ${e.message}`, 'bad');
    await drawHosts(main);
    return;
  }
  // The change reaches the hosts' projection from the log: look again
  // until it shows (a few times at most).
  const want = how === 'disable' ? 'disabled' : 'enabled';
  for (let i = 0; i < 10; i++) {
    const rows = await drawHosts(main);
    const row = rows && rows.find((x) => x.name === host);
    if (!row || row.status === want) return;
    await sleep(300);
  }
}

// The usage page: rated usage from /billing/v1 as a chart and a table.
function pageUsage() {
  const main = mount('#tpl-usage');
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const tomorrow = new Date(now.getTime() + 86400000);
  $('#u-start', main).value = first.toISOString().slice(0, 10);
  $('#u-end', main).value = tomorrow.toISOString().slice(0, 10);
  $('#usage-form', main).addEventListener('submit', (ev) => {
    ev.preventDefault();
    drawUsage(main);
  });
  $('#u-csv', main).addEventListener('click', () => downloadCsv(main));
  drawUsage(main);
}

function usagePath(main) {
  const start = $('#u-start', main).value;
  const end = $('#u-end', main).value;
  const project = isAdmin() ? $('#u-project', main).value.trim() : state.session.project_id;
  const q = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
  return project
    ? `/billing/v1/projects/${encodeURIComponent(project)}?${q}`
    : `/billing/v1/projects?${q}`;
}

async function drawUsage(main) {
  let r;
  try {
    r = (await api('GET', usagePath(main))).body;
  } catch (e) {
    say(`Cannot read usage: ${e.message}`, 'bad');
    return;
  }
  let labels, values, head, rows, total;
  if (r.bills) {
    labels = r.bills.map((b) => b.project_id);
    values = r.bills.map((b) => Number(b.total));
    const currency = r.bills.length ? r.bills[0].currency : '';
    total = `${r.bills.length} projects, ${values.reduce((a, b) => a + b, 0).toFixed(2)} ${currency}`;
    head = ['Project', 'Line items', 'Total'];
    rows = r.bills.map((b) => [
      el('a', { href: '#/usage', onclick: (ev) => { ev.preventDefault(); $('#u-project', main).value = b.project_id; drawUsage(main); } }, b.project_id),
      b.line_items,
      `${b.total} ${b.currency}`,
    ]);
  } else {
    const b = r.bill;
    const byServer = new Map();
    for (const l of b.line_items) {
      const k = l.server_name || l.server_id;
      byServer.set(k, (byServer.get(k) || 0) + Number(l.amount));
    }
    labels = [...byServer.keys()];
    values = [...byServer.values()];
    total = `Project ${b.project_id}: ${b.total} ${b.currency}`;
    head = ['Server', 'Flavor', 'State', 'Hours', 'Amount'];
    rows = b.line_items.map((l) => [
      l.server_name || l.server_id,
      l.flavor.name,
      l.state,
      (l.seconds / 3600).toFixed(3),
      `${l.amount} ${b.currency}`,
    ]);
  }
  $('#usage-total', main).textContent = total;
  $('#usage-head', main).replaceChildren(el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h))));
  $('#usage-body', main).replaceChildren(...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c)))));
  const canvas = $('#usage-chart', main);
  if (state.chart) {
    state.chart.destroy();
    state.chart = null;
  }
  if (window.Chart) {
    canvas.setAttribute('aria-label', `Cost by ${r.bills ? 'project' : 'server'}: ` + labels.map((l, i) => `${l} ${values[i]}`).join(', '));
    state.chart = new window.Chart(canvas, {
      type: 'bar',
      data: { labels, datasets: [{ label: 'Cost', data: values, backgroundColor: '#3b6ea5' }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } } },
    });
  } else {
    canvas.parentElement.hidden = true;
  }
}

async function downloadCsv(main) {
  try {
    const r = await api('GET', usagePath(main) + '&format=csv', undefined, { Accept: 'text/csv' });
    const url = URL.createObjectURL(new Blob([r.text], { type: 'text/csv' }));
    const a = el('a', { href: url, download: 'novalog-usage.csv' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (e) {
    say(`Cannot download: ${e.message}`, 'bad');
  }
}

// The audit page: every record a request caused, or about a server.
function pageAudit(q) {
  const main = mount('#tpl-audit');
  const input = $('#a-q', main);
  input.value = q;
  $('#audit-form', main).addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/audit/${encodeURIComponent(input.value.trim())}`;
  });
  if (q) drawAudit(main, q);
  else input.focus();
}

async function drawAudit(main, q) {
  let r;
  try {
    r = (await api('GET', `/dashboard/api/audit?q=${encodeURIComponent(q)}`)).body;
  } catch (e) {
    $('#audit-count', main).textContent = e.message;
    $('#audit-body', main).replaceChildren();
    return;
  }
  $('#audit-count', main).textContent = `${r.events.length} records about ${r.subject}.`;
  $('#audit-body', main).replaceChildren(
    ...r.events.map((e) =>
      el('tr', { 'data-type': e.type, class: 'mark-' + e.mark },
        el('td', {}, fmtTime(e.at_ms)),
        el('td', {}, e.position),
        el('td', {}, e.type),
        el('td', {}, `${e.actor.user_id}/${e.actor.project_id}`),
        el('td', {}, e.request_id),
        el('td', {}, e.aggregate_id),
        el('td', {}, e.vm_state || ''),
        el('td', {}, e.task_state || ''),
        el('td', {}, e.power_state || ''),
      ),
    ),
  );
}

// ---------- start ----------

window.addEventListener('hashchange', render);
window.addEventListener('DOMContentLoaded', () => {
  $('#logout').addEventListener('click', logout);
  restoreSession();
  render();
});
