/* kb_service analyst workbench.
 *
 * Plain JS, no dependencies. Reads the analyst JSON API with the key typed in the header (kept in
 * sessionStorage only). Everything from the server is put into the page as text nodes. Every
 * table sorts by a click on its header and exports exactly its rows as CSV (UTF-8 with BOM, so
 * Excel on a Chinese desktop opens it).
 */
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const state = { tab: 'overview', cache: {} };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
      else if (name === 'class') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
  const num = (v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString('zh-CN'));

  // ---------------------------------------------------------------- API

  function key() { return $('key').value.trim(); }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    const token = options.key !== undefined ? options.key : key();
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, Object.assign({}, options, { headers }));
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) throw new Error((body && body.detail && String(body.detail)) || `HTTP ${response.status}`);
    return body;
  }

  function periodQuery() {
    const params = new URLSearchParams();
    if ($('since').value) params.set('since', $('since').value);
    if ($('until').value) params.set('until', $('until').value);
    const text = params.toString();
    return text ? `?${text}` : '';
  }

  function status(message, isError) {
    $('status').textContent = message || '';
    $('status').className = isError ? 'error' : '';
  }

  async function section(name) {
    const cacheKey = `${name}${periodQuery()}`;
    if (!state.cache[cacheKey]) state.cache[cacheKey] = api(`/api/reports/${name}${periodQuery()}`);
    try {
      return await state.cache[cacheKey];
    } catch (error) {
      delete state.cache[cacheKey];
      throw error;
    }
  }

  // ---------------------------------------------------------------- tables and CSV

  function csvCell(value) {
    const text = value === null || value === undefined ? '' : String(value);
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function downloadCsv(name, columns, rows) {
    const lines = [columns.map((c) => csvCell(c.label)).join(',')];
    for (const row of rows) lines.push(columns.map((c) => csvCell(c.csv ? c.csv(row) : row[c.key])).join(','));
    const blob = new Blob(['\ufeff' + lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
    const link = el('a', { href: URL.createObjectURL(blob), download: `${name}.csv` });
    document.body.append(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  /** A sortable table with a CSV export button; columns: {key, label, num, show(row), csv(row)}. */
  function table(id, title, columns, rows, onRow) {
    const box = el('div', { class: 'tablebox', id });
    let sortKey = null;
    let ascending = true;
    const tbody = el('tbody');
    const heads = columns.map((c) => el('th', { class: c.num ? 'num' : '', 'data-key': c.key, onclick: () => sortBy(c) }, c.label));
    function render() {
      tbody.replaceChildren(...rows.map((row) => el('tr', { class: onRow ? 'clickable' : '', onclick: onRow ? () => onRow(row) : null },
        columns.map((c) => el('td', { class: c.num ? 'num' : '' }, c.show ? c.show(row) : (c.num ? num(row[c.key]) : row[c.key] ?? '—'))))));
      heads.forEach((h, i) => { h.textContent = columns[i].label + (columns[i].key === sortKey ? (ascending ? ' ▲' : ' ▼') : ''); });
    }
    function sortBy(c) {
      ascending = sortKey === c.key ? !ascending : !c.num;
      sortKey = c.key;
      const value = (row) => (c.sort ? c.sort(row) : row[c.key]);
      rows = rows.slice().sort((a, b) => {
        const x = value(a); const y = value(b);
        const order = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1;
        return ascending ? order : -order;
      });
      render();
    }
    box.append(el('h3', {}, el('span', {}, title, el('span', { class: 'muted' }, `（${rows.length} 行）`)),
      el('button', { class: 'small csv', type: 'button', onclick: () => downloadCsv(id, columns, rows) }, '导出 CSV')),
    el('table', {}, el('thead', {}, el('tr', {}, heads)), tbody));
    render();
    return box;
  }

  /** Horizontal bars: readable at a glance, one bar per item, value at its end. */
  function bars(items, label, value, title) {
    const width = 640; const row = 18; const left = 220;
    const max = Math.max(1, ...items.map(value));
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('width', width); svg.setAttribute('height', items.length * row + 24);
    svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', title);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
    };
    add('text', { x: 0, y: 12 }, title);
    items.forEach((item, i) => {
      const y = 20 + i * row; const w = Math.round((width - left - 60) * value(item) / max);
      add('text', { x: left - 6, y: y + 12, 'text-anchor': 'end' }, String(label(item)).slice(0, 18));
      add('rect', { x: left, y: y + 2, width: Math.max(w, 1), height: row - 5, fill: '#54aeff' });
      add('text', { x: left + w + 4, y: y + 12 }, num(value(item)));
    });
    return el('div', { class: 'tablebox' }, svg);
  }

  // ---------------------------------------------------------------- views

  function cards(summary) {
    const card = (name, value) => el('div', { class: 'card' }, name, el('b', {}, value));
    return el('div', { class: 'cards', id: 'summary' },
      card('查询量', num(summary.queries)), card('不同问法', num(summary.distinct_queries)),
      card('无把握答案占比', pct(summary.non_confident_share)), card('无结果占比', pct(summary.no_hit_share)),
      card('内容缺口查询', num(summary.gap_queries)), card('整体解决率', pct(summary.resolution_rate)));
  }

  async function overview(view) {
    const data = await section('frequency');
    $('period-label').textContent = `统计时间段：${data.period.label}　生成于 ${data.generated_at}`;
    if (data.empty) { view.append(el('p', { class: 'muted' }, data.message)); return; }
    view.append(cards(data.summary));
    view.append(bars(data.daily, (d) => d.day, (d) => d.queries, '每日查询量'));
    view.append(table('top_queries', '高频查询', [
      { key: 'rank', label: '#', num: true }, { key: 'representative', label: '问法' },
      { key: 'count', label: '查询数', num: true }, { key: 'share', label: '占比', num: true, show: (r) => pct(r.share) },
      { key: 'non_confident_share', label: '无把握', num: true, show: (r) => pct(r.non_confident_share) },
      { key: 'n_variants', label: '问法数', num: true }], data.top_queries,
    (row) => drillText(row.variants[0].normalised, row.representative)));
  }

  async function gaps(view) {
    const data = await section('gaps');
    $('period-label').textContent = `统计时间段：${data.period.label}　生成于 ${data.generated_at}`;
    if (data.empty || !data.gaps.length) { view.append(el('p', { class: 'muted' }, data.message || '没有缺口查询')); return; }
    view.append(el('p', { class: 'muted' }, `主题分组方式：${data.gap_method || '—'}　点击一行查看该主题的全部查询。`));
    view.append(bars(data.gaps.slice(0, 15), (g) => g.label, (g) => g.queries, '缺口主题（查询数）'));
    const names = (list) => list.map((a) => `${a.title}（${a.queries}）`).join('、') || '—';
    view.append(table('gaps', '内容缺口主题', [
      { key: 'rank', label: '#', num: true }, { key: 'label', label: '主题（中心问法）' },
      { key: 'queries', label: '缺口查询', num: true }, { key: 'unresolved', label: '未解决', num: true },
      { key: 'distinct_phrasings', label: '问法数', num: true },
      { key: 'keywords', label: '关键词', show: (r) => r.keywords.join('、'), csv: (r) => r.keywords.join(' | ') },
      { key: 'articles_shown', label: '曾展示的文章', show: (r) => names(r.articles_shown), csv: (r) => names(r.articles_shown), sort: (r) => r.articles_shown.length },
      { key: 'articles_opened', label: '坐席打开的文章', show: (r) => names(r.articles_opened), csv: (r) => names(r.articles_opened), sort: (r) => r.articles_opened.length }],
    data.gaps, drillGap));
  }

  async function articles(view) {
    const data = await section('articles');
    $('period-label').textContent = `统计时间段：${data.period.label}　生成于 ${data.generated_at}`;
    if (data.empty) { view.append(el('p', { class: 'muted' }, data.message)); return; }
    view.append(table('articles', '文章表现（点击查看其查询与版本）', [
      { key: 'title', label: '文章' }, { key: 'category_label', label: '分类' },
      { key: 'impressions', label: '展示次数', num: true }, { key: 'shown_texts', label: '展示查询（不同问法）', num: true },
      { key: 'open_queries', label: '打开查询', num: true }, { key: 'ctr', label: 'CTR', num: true, show: (r) => pct(r.ctr) },
      { key: 'feedback', label: '反馈票', num: true }, { key: 'resolved', label: '已解决', num: true },
      { key: 'rate_label', label: '解决率（95% 区间）', sort: (r) => r.resolution_rate }], data.articles, (row) => drillArticle(row.article_id)));
  }

  async function proposals(view) {
    const data = await api(`/api/workbench/proposals${periodQuery()}`);
    view.append(el('p', { class: 'muted' }, '真实查询：搜索没给好答案、坐席最终在某篇文章找到答案并点了「已解决」。采纳后写入文章 front matter（版本 +1），请审阅并提交该文件改动。'));
    view.append(el('label', {}, '编辑密钥（采纳用，留空则用分析密钥）', el('input', { id: 'editor-key', type: 'password', size: 14 })));
    view.append(table('proposals', '相似问建议', [
      { key: 'text', label: '问法' }, { key: 'article_title', label: '文章' }, { key: 'section', label: '小节' },
      { key: 'queries', label: '查询数', num: true }, { key: 'in_query', label: '打开后解决', num: true },
      { key: 'after_gap', label: '缺口后解决', num: true },
      { key: 'proposal_id', label: '操作', show: (r) => el('button', { class: 'small adopt', type: 'button', onclick: (e) => { e.stopPropagation(); adopt(r); } }, '采纳') }],
    data.proposals));
  }

  async function stale(view) {
    const data = await api('/api/workbench/stale');
    view.append(table('stale', '已过复核日期（review_by）的文章', [
      { key: 'title', label: '文章' }, { key: 'article_id', label: 'ID' }, { key: 'owner', label: '负责人' },
      { key: 'review_by', label: '复核日期' }, { key: 'days_overdue', label: '逾期天数', num: true }], data.articles));
    // Articles agents flagged 内容有误 / 已过时 in the period: the other half of what needs review.
    const flagged = await section('flags');
    view.append(table('flags', '坐席标记的文章（内容有误 / 已过时）', [
      { key: 'title', label: '文章' }, { key: 'reason_label', label: '原因' },
      { key: 'flags', label: '标记数', num: true }, { key: 'flagged_version', label: '标记时版本', num: true },
      { key: 'current_version', label: '当前版本', num: true }, { key: 'latest', label: '最近一次' },
      { key: 'comments', label: '说明', show: (r) => r.comments.join('；'), csv: (r) => r.comments.join(' | ') }],
    flagged.flags || []));
  }

  // ---------------------------------------------------------------- drill-down and actions

  function queryTable(id, title, rows) {
    const list = (items) => items.join('、') || '—';
    return table(id, title, [
      { key: 'time', label: '时间' }, { key: 'text', label: '问法' },
      { key: 'confident', label: '有把握', show: (r) => (r.confident ? '是' : '否') },
      { key: 'shown', label: '展示的文章', show: (r) => r.shown.map((s) => `${s.rank}. ${s.title}`).join('　') || '无结果', csv: (r) => r.shown.map((s) => s.article_id).join(' | '), sort: (r) => r.shown.length },
      { key: 'opened', label: '打开', show: (r) => list(r.opened), csv: (r) => r.opened.join(' | '), sort: (r) => r.opened.length },
      { key: 'copied', label: '复制', show: (r) => list(r.copied), csv: (r) => r.copied.join(' | '), sort: (r) => r.copied.length },
      { key: 'outcome', label: '反馈' }], rows);
  }

  function drillBox(title) {
    const drill = $('drill');
    drill.hidden = false;
    drill.replaceChildren(el('h2', {}, title), el('button', { type: 'button', class: 'small', onclick: () => { drill.hidden = true; } }, '关闭'));
    return drill;
  }

  async function drillGap(row) {
    const drill = drillBox(`缺口主题：${row.label}`);
    try {
      const data = await api(`/api/workbench/gaps/${row.rank}/queries${periodQuery()}`);
      drill.append(el('p', { class: 'muted' }, `${data.topic.queries} 次查询，${data.topic.phrasings} 种问法；下表为最近 ${data.queries.length} 次。`));
      drill.append(queryTable('gap_queries', '该主题的查询', data.queries));
      drill.append(assignForm(row.label, row.articles_opened[0] || row.articles_shown[0]));
      drill.scrollIntoView();
    } catch (error) { status(error.message, true); }
  }

  async function drillText(normalised, label) {
    const drill = drillBox(`问法：${label}`);
    try {
      const params = new URLSearchParams(periodQuery().slice(1));
      params.set('text', normalised);
      const data = await api(`/api/workbench/queries?${params}`);
      drill.append(queryTable('text_queries', '该问法的查询', data.queries));
      drill.scrollIntoView();
    } catch (error) { status(error.message, true); }
  }

  async function drillArticle(articleId) {
    const drill = drillBox(`文章：${articleId}`);
    try {
      const data = await api(`/api/workbench/articles/${encodeURIComponent(articleId)}${periodQuery()}`);
      drill.querySelector('h2').textContent = `文章：${data.title}（当前版本 v${data.current_version ?? '?'}）`;
      drill.append(table('article_versions', '各版本', [
        { key: 'version', label: '版本', num: true }, { key: 'shown', label: '展示', num: true },
        { key: 'mean_rank', label: '平均排名', num: true }, { key: 'opened', label: '打开', num: true },
        { key: 'resolved', label: '已解决', num: true }, { key: 'first_shown', label: '首次展示' }, { key: 'last_shown', label: '最后展示' }], data.versions));
      drill.append(table('article_queries', '带出该文章的问法（点击看每次查询）', [
        { key: 'text', label: '问法' }, { key: 'shown', label: '展示', num: true }, { key: 'non_confident', label: '无把握', num: true },
        { key: 'mean_rank', label: '平均排名', num: true }, { key: 'opened', label: '打开', num: true }, { key: 'resolved', label: '已解决', num: true }],
      data.queries, (r) => drillText(r.normalised, r.text)));
      drill.scrollIntoView();
    } catch (error) { status(error.message, true); }
  }

  /** An editor assigns the topic's question to an article section (editor key, same route as 采纳). */
  function assignForm(question, article) {
    const text = el('input', { id: 'assign-question', size: 24, value: question });
    const articleId = el('input', { id: 'assign-article', size: 18, placeholder: '文章 ID', value: article ? article.article_id : '' });
    const heading = el('input', { id: 'assign-section', size: 16, placeholder: '小节标题' });
    const editorKey = el('input', { id: 'assign-key', type: 'password', size: 12, placeholder: '编辑密钥（留空用分析密钥）' });
    const submit = async (event) => {
      event.preventDefault();
      await adopt({ question: text.value, article_id: articleId.value, section: heading.value, text: text.value }, editorKey.value.trim());
    };
    return el('form', { id: 'assign', onsubmit: submit }, '把这个问法作为相似问加入：', text, articleId, heading, editorKey,
      el('button', { type: 'submit' }, '加入文章'));
  }

  async function adopt(proposal, keyOverride) {
    const editorKey = keyOverride || ($('editor-key') && $('editor-key').value.trim()) || key();
    status(`正在采纳「${proposal.text}」…`);
    try {
      const body = JSON.stringify(proposal.proposal_id
        ? { proposal_id: proposal.proposal_id, since: $('since').value || null, until: $('until').value || null }
        : { question: proposal.question, article_id: proposal.article_id, section: proposal.section || null });
      const result = await api('/api/workbench/proposals/adopt', { method: 'POST', body, key: editorKey, headers: { 'Content-Type': 'application/json' } });
      status(result.added ? `已写入 ${result.file}「${result.section}」（版本 ${result.version}），请审阅并提交改动` : '该小节已有这条相似问，未修改');
      const drill = drillBox('文件改动');
      drill.append(el('pre', { class: 'diff', id: 'adopt-diff' }, result.diff || '（无改动）'));
      show(state.tab);
    } catch (error) { status(`采纳失败：${error.message}`, true); }
  }

  // ---------------------------------------------------------------- wiring

  const VIEWS = { overview, gaps, articles, proposals, stale };

  async function show(tab) {
    state.tab = tab;
    document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === tab));
    const view = $('view');
    view.replaceChildren();
    status('加载中…');
    const started = performance.now();
    try {
      await VIEWS[tab](view);
      status(`已加载（${Math.round(performance.now() - started)} ms）`);
    } catch (error) { status(error.message, true); }
  }

  function isoDay(date) { return date.toISOString().slice(0, 10); }

  $('key').value = sessionStorage.getItem('kb-workbench-key') || '';
  $('key').addEventListener('change', () => { sessionStorage.setItem('kb-workbench-key', key()); state.cache = {}; });
  $('period').addEventListener('submit', (event) => { event.preventDefault(); $('drill').hidden = true; show(state.tab); });
  document.querySelectorAll('#period button[data-days]').forEach((button) => button.addEventListener('click', () => {
    const days = Number(button.dataset.days);
    $('since').value = days ? isoDay(new Date(Date.now() - (days - 1) * 86400000)) : '';
    $('until').value = days ? isoDay(new Date()) : '';
    $('drill').hidden = true;
    show(state.tab);
  }));
  document.querySelectorAll('#tabs button').forEach((button) => button.addEventListener('click', () => show(button.dataset.tab)));
  show('overview');
})();
