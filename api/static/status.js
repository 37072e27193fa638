// Tern status page: reads the node's /v1 API every few seconds and renders
// it. No framework, no third-party code; every value from the API reaches
// the page through textContent or an attribute, never as HTML.
'use strict';

(function () {
  const REFRESH_MS = 5000;
  const FETCH_TIMEOUT_MS = 4000;
  const MAX_EVENTS = 50;
  const TOKEN_KEY = 'tern.token';

  const $ = (id) => document.getElementById(id);

  // el('td', {class: 'num', 'data-node': 'n1'}, 'text', childNode, ...)
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids) {
      if (k === undefined || k === null) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function badge(kind, text, title) {
    return el('span', {class: 'badge ' + kind, title: title}, text);
  }

  let memToken = ''; // when sessionStorage is off

  // The token: from the URL fragment (#token=...), which is never sent to
  // the server and is removed from the address bar at once, or from the
  // form; kept in sessionStorage for this tab only.
  function takeFragmentToken() {
    const m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
    if (!m) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    } catch (e) { /* storage off: the token lasts until the next load */ memToken = decodeURIComponent(m[1]); }
    history.replaceState(null, '', location.pathname + location.search);
  }
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || memToken; } catch (e) { return memToken; }
  }
  function setToken(t) {
    memToken = t;
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  }

  // get answers {data} or {err: 'auth'|'na'|'down'|'error', msg}.
  async function get(path) {
    const headers = {Accept: 'application/json'};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    // A node that does not answer must not stop the refreshes.
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    let resp;
    try {
      resp = await fetch(path, {headers: headers, cache: 'no-store', signal: ctl.signal});
    } catch (e) {
      return {err: 'down', msg: 'node unreachable (' + (e.name === 'AbortError' ? 'no answer within ' + FETCH_TIMEOUT_MS / 1000 + ' s' : e.message) + ')'};
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (resp.ok) return {data: body};
    const msg = (body && body.error) || (resp.status + ' ' + resp.statusText);
    if (resp.status === 401) return {err: 'auth', msg: msg};
    if (resp.status === 501) return {err: 'na', msg: msg};
    return {err: 'error', msg: 'HTTP ' + resp.status + ': ' + msg};
  }

  // fill replaces a section's content; a failed read says why instead.
  function fill(id, res, render) {
    const box = $(id);
    let content;
    if (res.err === 'na') {
      content = el('p', {class: 'na'}, 'Not available on this node.');
    } else if (res.err) {
      content = el('p', {class: 'na'}, 'Not shown: ' + res.msg);
    } else {
      content = render(res.data);
    }
    box.replaceChildren(content);
  }

  const fmtTime = (s) => {
    const d = new Date(s);
    return isNaN(d) ? '' : d.toLocaleTimeString([], {hour12: false});
  };
  const fmtAgo = (s) => {
    const sec = Math.round((Date.now() - new Date(s).getTime()) / 1000);
    if (!isFinite(sec)) return '';
    if (sec < 0) return 'in the future: clocks differ';
    if (sec < 120) return sec + ' s ago';
    if (sec < 7200) return Math.round(sec / 60) + ' min ago';
    return Math.round(sec / 3600) + ' h ago';
  };
  const fmtNum = (n) => Number(n).toLocaleString('en-US');

  function renderNode(st) {
    const dl = el('dl', {class: 'summary', id: 'node', 'aria-label': 'This node'});
    const item = (k, v) => dl.append(el('div', {}, el('dt', {}, k), el('dd', {}, v)));
    item('Node', st.node);
    if (st.raft_state) item('Raft', st.raft_state + (st.term ? ' (term ' + st.term + ')' : ''));
    item('Leader', st.leader || 'none known');
    item('Quorum', st.in_quorum ? badge('b-ok', 'in quorum') : badge('b-bad', 'NOT in quorum'));
    item('Serving', st.serving ? badge('b-ok', 'serving') : badge('b-bad', 'NOT serving'));
    item('Config', st.config_version ? 'version ' + st.config_version : 'local');
    item('Members up', st.members_up + ' of ' + st.members_total);
    for (const w of st.warnings || []) item('Warning', w);
    return dl;
  }

  function renderCluster(members, leader) {
    if (!members || members.length === 0) return el('p', {class: 'muted'}, 'Standalone node (no Raft cluster).');
    const tb = el('tbody');
    for (const m of members) {
      const isLeader = m.leader || (leader && m.id === leader);
      // A peer whose API did not answer is no follower: it is down, or cut off.
      const unreachable = m.reachable === false;
      const role = unreachable ? badge('b-bad', 'unreachable', m.unreachable || '') : isLeader ? badge('b-ok', '★ leader') : 'follower';
      tb.append(el('tr', {'data-cluster-member': m.id, 'data-leader': isLeader ? 'true' : 'false', 'data-reachable': unreachable ? 'false' : 'true'},
        el('td', {}, m.id),
        el('td', {'data-col': 'role', title: m.unreachable || null}, role),
        el('td', {}, m.voter ? 'voter' : 'non-voter'),
        el('td', {class: 'addr'}, m.raft_addr),
        el('td', {class: 'addr'}, m.api_addr || '')));
    }
    return el('table', {},
      el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Node'), el('th', {scope: 'col'}, 'Role'),
        el('th', {scope: 'col'}, 'Suffrage'), el('th', {scope: 'col'}, 'Raft'), el('th', {scope: 'col'}, 'API'))),
      tb);
  }

  // chart draws values (oldest first, negative: no point) as a small SVG
  // line chart, scaled to its own maximum, with that maximum as its label.
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }
  function chart(values, opts) {
    const w = opts.width, h = opts.height;
    const vals = (values || []).map((v) => (typeof v === 'number' && v >= 0 ? v : null));
    const top = Math.max(0, ...vals.filter((v) => v !== null));
    const root = svg('svg', {width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, class: 'chart', role: 'img',
      'aria-label': opts.label + ': ' + vals.filter((v) => v !== null).length + ' points, max ' + top.toFixed(1) + ' ' + opts.unit,
      'data-chart': opts.id, 'data-points': vals.filter((v) => v !== null).length, 'data-max': top});
    root.append(svg('rect', {x: 0, y: 0, width: w, height: h, class: 'chart-bg'}));
    const step = vals.length > 1 ? w / (vals.length - 1) : w;
    let d = '';
    vals.forEach((v, i) => {
      if (v === null) return;
      const x = (i * step).toFixed(1), y = (h - 2 - (top > 0 ? (v / top) * (h - 4) : 0)).toFixed(1);
      d += (d === '' || vals[i - 1] === null ? 'M' : 'L') + x + ' ' + y + ' ';
    });
    if (d) root.append(svg('path', {d: d.trim(), class: 'chart-line'}));
    const t = svg('text', {x: 3, y: 11, class: 'chart-label'});
    t.textContent = 'max ' + (Math.round(top * 10) / 10) + ' ' + opts.unit;
    root.append(t);
    return root;
  }

  let latency = new Map(); // "pool/member" -> ms history, from /v1/stats

  function renderQueries(s) {
    const box = el('div', {id: 'query-stats'});
    const win = s.window_seconds || 10;
    box.append(el('p', {},
      el('strong', {id: 'query-rate', 'data-rate': s.rate}, (Math.round(s.rate * 10) / 10).toFixed(1) + ' queries/s'),
      ' over the last ' + win + ' s · ',
      el('span', {id: 'query-total'}, fmtNum(s.total) + ' queries'), ' since start'));
    const hist = s.history;
    latency = new Map(((hist && hist.latency) || []).map((l) => [l.pool + '/' + l.member, l.ms]));
    if (hist && hist.qps && hist.qps.length) {
      const mins = Math.round(hist.qps.length * hist.qps_step_seconds / 60);
      box.append(el('p', {class: 'muted'}, 'Queries per second, last ' + mins + ' min:'),
        chart(hist.qps, {id: 'qps', label: 'queries per second', unit: 'q/s', width: 360, height: 60}));
    }
    const rc = Object.entries(s.rcodes || {}).sort((a, b) => b[1] - a[1]);
    if (rc.length) {
      const tb = el('tbody');
      for (const [code, n] of rc) {
        const pct = s.total ? (100 * n / s.total).toFixed(1) + ' %' : '';
        tb.append(el('tr', {'data-rcode': code}, el('td', {}, code), el('td', {class: 'num'}, fmtNum(n)), el('td', {class: 'num'}, pct)));
      }
      box.append(el('table', {}, el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Response code'),
        el('th', {scope: 'col'}, 'Answers'), el('th', {scope: 'col'}, 'Share'))), tb));
    }
    return box;
  }

  // memberState is the state the node answers with, as a word and a class.
  function memberState(m) {
    if (m.admin === 'drain') return ['drain', 'DRAIN', 'h-drain'];
    if (m.forced) return m.up ? ['up', 'UP (forced)', 'h-up'] : ['down', 'DOWN (forced)', 'h-down'];
    return m.up ? ['up', 'UP', 'h-up'] : ['down', 'DOWN', 'h-down'];
  }

  // shedBadges say what share of a member's clients goes elsewhere: an
  // operator's shed (admin shed:N, from tern member shed or tern site
  // shed) and the capacity spill-over (its load or its site's past
  // spill_at of the declared capacity). Where both hold, the larger counts.
  function shedBadges(m, spillAt) {
    const out = [];
    const op = /^shed:(\d+)$/.exec(m.admin || '');
    if (op) out.push(badge('h-shed', 'shed ' + op[1] + '%', 'an operator sheds ' + op[1] + '% of its clients (tern member shed or tern site shed)'));
    if (m.spill > 0) {
      const pct = Math.round(m.spill * 100);
      out.push(badge('h-shed', 'spill ' + pct + '%', (m.capacity_of === 'site' ? 'site ' + m.site : 'member') + ' load ' + fmtNum(m.capacity_load || 0) +
        ' over ' + fmtNum(spillAt * m.capacity) + ' (' + spillAt + ' of capacity ' + fmtNum(m.capacity) + '): ' + pct + '% of its clients move'));
    }
    return out.flatMap((b) => [' ', b]);
  }

  // loadCell is a member's served load and, where a capacity is declared,
  // the load held against it: its site's summed load, or its own.
  function loadCell(m) {
    const td = el('td', {'data-col': 'load', class: 'num'}, m.load ? m.load.toFixed(2) : '');
    if (m.capacity) {
      td.append(m.load ? ' · ' : '', el('span', {class: 'muted', 'data-capacity': m.capacity_of, title: 'load against the ' + m.capacity_of + "'s declared capacity"},
        (m.capacity_of === 'site' ? 'site ' : '') + fmtNum(m.capacity_load || 0) + ' of ' + fmtNum(m.capacity)));
    }
    return td;
  }

  function verdictCell(node, v) {
    if (!v) return el('td', {'data-node': node, 'data-state': 'none', class: 'muted', title: node + ' does not probe this member'}, '— not probed');
    const title = node + ': ' + (v.up ? 'up' : 'down') + ' at ' + fmtTime(v.at) + ' (' + fmtAgo(v.at) + ')' + (v.reason ? ': ' + v.reason : '');
    if (v.stale) return el('td', {'data-node': node, 'data-state': 'stale'}, badge('h-stale', 'stale: ' + (v.up ? 'up' : 'down'), title + ', too old to count'));
    return el('td', {'data-node': node, 'data-state': v.up ? 'up' : 'down'}, badge(v.up ? 'h-up' : 'h-down', v.up ? 'up' : 'down', title));
  }

  function renderPools(pools) {
    const box = el('div', {});
    if (!pools || pools.length === 0) {
      box.append(el('p', {class: 'muted'}, 'No pools configured.'));
      return box;
    }
    for (const p of pools) {
      const nodes = [...new Set((p.members || []).flatMap((m) => (m.verdicts || []).map((v) => v.node)))].sort();
      const up = (p.members || []).filter((m) => memberState(m)[0] === 'up').length;
      const head = el('tr', {}, el('th', {scope: 'col'}, 'Member'), el('th', {scope: 'col'}, 'State'),
        el('th', {scope: 'col'}, 'Site'), el('th', {scope: 'col', title: 'weight / priority'}, 'Wt / prio'));
      for (const n of nodes) head.append(el('th', {scope: 'col', title: 'probe verdict seen by node ' + n}, 'seen by ' + n));
      head.append(el('th', {scope: 'col'}, 'Last check here'), el('th', {scope: 'col'}, 'Latency (1 h)'),
        el('th', {scope: 'col'}, 'Answers served'), el('th', {scope: 'col'}, 'Load'), el('th', {scope: 'col'}, 'Why'),
        el('th', {scope: 'col'}, 'Admin'));
      const tb = el('tbody');
      for (const m of p.members || []) {
        const [state, text, cls] = memberState(m);
        const tr = el('tr', {'data-pool': p.name, 'data-member': m.address, 'data-state': state, 'data-admin': m.admin || 'auto'},
          el('th', {scope: 'row', class: 'addr'}, m.address),
          el('td', {'data-col': 'state'}, badge(cls, text), ...shedBadges(m, p.spill_at)),
          el('td', {'data-col': 'site'}, m.site || ''),
          el('td', {'data-col': 'weight', class: 'num'}, (m.weight || 1) + ' / ' + (m.priority || 1)));
        const byNode = new Map((m.verdicts || []).map((v) => [v.node, v]));
        for (const n of nodes) tr.append(verdictCell(n, byNode.get(n)));
        const lc = m.last_check;
        tr.append(lc ? el('td', {'data-col': 'check', 'data-ok': lc.ok ? 'true' : 'false', title: fmtTime(lc.at) + (lc.error ? ': ' + lc.error : '')},
          el('span', {class: lc.ok ? 't-up' : 't-down'}, lc.ok ? 'ok' : 'failed'), ' ' + lc.rtt_ms.toFixed(1) + ' ms' + (lc.error ? ': ' + lc.error : '')) :
          el('td', {'data-col': 'check', class: 'muted'}, 'not probed here'));
        const lat = latency.get(p.name + '/' + m.address);
        tr.append(el('td', {'data-col': 'latency'}, lat ? chart(lat, {id: 'latency ' + p.name + '/' + m.address, label: 'probe latency of ' + m.address, unit: 'ms', width: 120, height: 24}) : ''));
        tr.append(el('td', {'data-col': 'answers', class: 'num'}, fmtNum(m.answers || 0)));
        tr.append(loadCell(m), el('td', {class: 'why'}, m.why || ''));
        const acts = el('td', {'data-col': 'admin'});
        for (const a of ['drain', 'down', 'up', 'auto']) {
          acts.append(el('button', {type: 'button', class: 'act', 'data-action': a, 'data-pool': p.name, 'data-address': m.address,
            'aria-pressed': (m.admin || 'auto') === a ? 'true' : 'false', title: 'set ' + m.address + ' to ' + a}, a));
        }
        tr.append(acts);
        tb.append(tr);
      }
      box.append(el('section', {'data-pool-section': p.name},
        el('h3', {}, p.name + ' ', el('span', {class: 'muted'}, '(' + up + ' of ' + (p.members || []).length + ' answering)')),
        el('p', {class: 'muted', 'data-pool-info': p.name}, 'policy ' + (p.policy || 'roundrobin') + ' · check ' +
          (p.check ? p.check + (p.check_type ? ' (' + p.check_type + ')' : '') : 'none') +
          (p.spill_at ? ' · spill past ' + Math.round(p.spill_at * 100) + '% of capacity' : '')),
        el('table', {}, el('thead', {}, head), tb)));
    }
    return box;
  }

  function stateText(s) {
    return el('span', {class: s === 'up' ? 't-up' : s === 'down' ? 't-down' : 't-other'}, s || '?');
  }

  function renderEvents(evs) {
    if (!evs || evs.length === 0) return el('p', {class: 'muted'}, 'No state changes recorded yet.');
    const recent = evs.slice(-MAX_EVENTS).reverse();
    const tb = el('tbody');
    for (const e of recent) {
      tb.append(el('tr', {'data-event-pool': e.pool, 'data-event-member': e.member, 'data-event-to': e.to},
        el('td', {title: e.at}, fmtTime(e.at)),
        el('td', {}, e.pool), el('td', {class: 'addr'}, e.member),
        el('td', {}, e.node || 'cluster'),
        el('td', {}, stateText(e.from), ' → ', stateText(e.to)),
        el('td', {class: 'why'}, e.why || '')));
    }
    return el('table', {},
      el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Time'), el('th', {scope: 'col'}, 'Pool'),
        el('th', {scope: 'col'}, 'Member'), el('th', {scope: 'col'}, 'Seen by'), el('th', {scope: 'col'}, 'Change'),
        el('th', {scope: 'col'}, 'Why'))),
      tb);
  }

  // setAdmin sends an admin state with the token as the Authorization
  // header (never in the URL); a refusal shows the token form.
  async function setAdmin(pool, address, state) {
    const headers = {'Content-Type': 'application/json', Accept: 'application/json'};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const problem = $('problem');
    let resp;
    try {
      resp = await fetch(`/v1/pools/${encodeURIComponent(pool)}/members/${encodeURIComponent(address)}/admin`,
        {method: 'PUT', headers: headers, body: JSON.stringify({state: state}), cache: 'no-store'});
    } catch (e) {
      problem.textContent = 'set ' + address + ' to ' + state + ': node unreachable (' + e.message + ')';
      problem.hidden = false;
      return;
    }
    if (resp.ok) {
      problem.hidden = true;
      refresh();
      return;
    }
    let msg = resp.status + ' ' + resp.statusText;
    try { const b = await resp.json(); if (b && b.error) msg = b.error; } catch (e) { /* not JSON */ }
    if (resp.status === 401) {
      $('token-label').textContent = 'Changing a member needs the API write token. Token:';
      $('token-form').hidden = false;
      writeWanted = true;
    }
    problem.textContent = 'set ' + address + ' to ' + state + ' refused: ' + msg;
    problem.hidden = false;
  }
  let writeWanted = false;

  let running = false;
  async function refresh() {
    if (running) return;
    running = true;
    try {
      const [st, cl, pools, evs, stats] = await Promise.all(
        ['/v1/status', '/v1/cluster/members', '/v1/pools', '/v1/events', '/v1/stats'].map(get));
      const all = [st, cl, pools, evs, stats];
      const auth = all.find((r) => r.err === 'auth');
      const down = all.find((r) => r.err === 'down');
      $('token-form').hidden = !auth && !writeWanted;
      $('forget-token').hidden = !token();
      const problem = $('problem');
      if (down || auth) {
        problem.textContent = down ? down.msg + ': showing the last data read.' :
          (token() ? 'The token was refused: ' : 'Reads need the API token: ') + auth.msg;
        problem.hidden = false;
      } else {
        problem.hidden = true;
      }
      if (down) return; // keep what is on screen
      if (st.data) $('node').replaceWith(renderNode(st.data));
      if (cl.err === 'na' && st.data && !st.data.raft_state) {
        $('cluster').replaceChildren(el('p', {class: 'muted'}, 'Standalone node (no Raft cluster).'));
      } else {
        fill('cluster', cl, (m) => renderCluster(m, st.data && st.data.leader));
      }
      fill('queries', stats, renderQueries);
      fill('pools', pools, renderPools);
      fill('events', evs, renderEvents);
      $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString([], {hour12: false});
    } finally {
      running = false;
    }
  }

  function start() {
    takeFragmentToken();
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      setToken($('token-input').value.trim());
      writeWanted = false;
      $('token-input').value = '';
      refresh();
    });
    $('forget-token').addEventListener('click', () => { setToken(''); refresh(); });
    $('pools').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-action]');
      if (b) setAdmin(b.dataset.pool, b.dataset.address, b.dataset.action);
    });
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
