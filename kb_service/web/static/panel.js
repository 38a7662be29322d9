/* kb_service side panel.
 *
 * Plain modern JS, no dependencies, no build step. Everything the server sends as text is put
 * into the page with textContent / text nodes (highlights are built as <mark> elements), never as
 * HTML. The only HTML inserted is the article body rendered by the server, and it goes through a
 * small allow-list sanitizer first.
 */
(() => {
  'use strict';

  const CATEGORIES = {
    coverage: '险种说明',
    claims: '理赔材料与流程',
    script: '合规话术',
    process: '服务流程',
    compliance: '合规与风控',
    service: '服务技巧',
    training: '培训与发展',
  };
  const DEBOUNCE_MS = 250;
  // A search is logged once it settles: Enter, a result opened/copied/inserted/voted on, or this
  // long without typing. Until then the panel searches with log=0 (a preview), so the prefixes
  // typed on the way (三, 三者, 三者险) never reach the usage log (docs/integration.md).
  const SETTLE_MS = 1500;
  const host = window.kbHost;
  const RESULT_COUNT = 5;
  const HEALTH_EVERY_MS = 60_000;
  // Longest text the server reads (KB_MAX_QUERY_CHARS, from /api/health). A longer paste is kept
  // in the box; its start is sent with truncate=1 and the server searches its first question.
  let maxQueryChars = 1000;

  // ---------------------------------------------------------------- dom helpers

  const $ = (id) => document.getElementById(id);

  /** el('div', {class: 'x', onclick: fn}, child, 'text', ...) — children are nodes or plain text. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith('on') && typeof value === 'function') {
        node.addEventListener(name.slice(2), value);
      } else if (name === 'class') {
        node.className = value;
      } else if (name === 'dataset') {
        Object.assign(node.dataset, value);
      } else {
        node.setAttribute(name, value === true ? '' : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const ui = {
    panel: $('panel'),
    health: $('health'),
    form: $('search-form'),
    input: $('q'),
    category: $('category'),
    status: $('status'),
    took: $('took'),
    content: $('content'),
    listView: $('list-view'),
    message: $('message'),
    banner: $('oos-banner'),
    bannerTopic: $('oos-topic'),
    lowHeading: $('low-heading'),
    results: $('results'),
    listFeedback: $('list-feedback'),
    noneHelped: $('none-helped'),
    hint: $('hint'),
    articleView: $('article-view'),
    article: $('article'),
    back: $('back'),
    live: $('sr-live'),
    reading: $('reading'),
  };
  const barTitle = $('article-bar-title');

  // ---------------------------------------------------------------- api

  function readApiKey() {
    const match = /(?:^#|[#&])key=([^&]*)/.exec(window.location.hash || '');
    if (match && match[1]) {
      try { return decodeURIComponent(match[1]); } catch { return match[1]; }
    }
    try { return window.localStorage.getItem('kb_api_key') || ''; } catch { return ''; }
  }
  const apiKey = readApiKey();

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
    }
  }

  const hasCjk = (s) => /[\u3400-\u9fff]/.test(s);

  function errorMessage(status, data) {
    const detail = data && data.detail;
    if (status === 401) return '需要有效的 API 密钥：请在页面地址后加 #key=… ，或联系管理员。';
    if (status === 403) return '当前密钥无权访问知识库，请联系管理员。';
    if (status === 429) return '请求太频繁，请稍后再试。';
    if (status >= 500) return `知识库服务出错（HTTP ${status}），请稍后重试；问题持续请联系管理员。`;
    if (typeof detail === 'string' && detail.trim()) {
      return hasCjk(detail) ? detail : `请求有误：${detail}`;
    }
    if (Array.isArray(detail) && detail.length) {
      const parts = detail.map((d) => (d && d.msg) || '').filter(Boolean);
      return `请求参数有误${parts.length ? '：' + parts.join('；') : ''}`;
    }
    if (status === 404) return '没有找到该内容，可能已被删除或更名。';
    return `请求失败（HTTP ${status}）。`;
  }

  async function api(path, { method = 'GET', body, signal, keepalive } = {}) {
    const headers = { Accept: 'application/json', ...host.idHeaders() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        keepalive,
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError('无法连接知识库服务，请检查网络后重试。', 0);
    }
    const raw = await response.text();
    let data = null;
    if (raw) {
      try { data = JSON.parse(raw); } catch { data = null; }
    }
    if (!response.ok) throw new ApiError(errorMessage(response.status, data), response.status);
    return data;
  }

  /** Fire-and-forget POST (usage events); failures never bother the agent. */
  function sendEvent(payload) {
    settle().then(() => api('/api/events', { method: 'POST', body: payload, keepalive: true })).catch(() => {});
    host.emit(payload.type, { queryId: payload.query_id, articleId: payload.article_id });
  }

  // ---------------------------------------------------------------- state

  const state = {
    view: 'list',            // 'list' | 'article'
    timer: 0,
    composing: false,
    seq: 0,                  // id of the newest search request
    controller: null,        // AbortController of the in-flight search
    loading: false,
    shownKey: null,          // query+category of the results on screen
    data: null,              // last search response shown
    hits: [],
    active: -1,              // index of the selected result, -1 = none
    listScroll: 0,
    articleSeq: 0,
    articleController: null,
    articleStack: [],        // [{data, hit, queryId}] for links between articles
    feedback: new Map(),     // `${query_id}|${article_id || '*'}` -> 'pending' | 'yes' | 'no'
    settleTimer: 0,
    settleWanted: false,     // the agent is done typing: log the search on screen once it is there
    settling: null,          // the in-flight request that logs the previewed search
    asTyped: false,          // 「仍按原文搜索」: this query is searched without typo correction
  };

  const announce = (text) => {
    ui.live.textContent = '';
    window.setTimeout(() => { ui.live.textContent = text; }, 30);
  };

  // ---------------------------------------------------------------- highlighting

  function escapeRegExp(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }

  function highlighter(terms) {
    const unique = [...new Set((terms || []).map((t) => String(t || '').trim()).filter(Boolean))];
    if (!unique.length) return null;
    unique.sort((a, b) => b.length - a.length);
    return new RegExp(unique.map(escapeRegExp).join('|'), 'gi');
  }

  /** Append `text` to `parent` as text nodes, with matches of `re` wrapped in <mark>. */
  function appendHighlighted(parent, text, re) {
    if (!re) {
      parent.append(document.createTextNode(text));
      return;
    }
    re.lastIndex = 0;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex += 1; continue; }
      if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
      parent.append(el('mark', null, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  /** Wrap matches in the text nodes of an already-built DOM subtree (article view). */
  function highlightTree(root, re) {
    if (!re) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
      acceptNode(node) {
        const parent = node.parentElement;
        if (!parent || parent.closest('mark, button, .script-label')) return NodeFilter.FILTER_REJECT;
        return node.nodeValue.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
      },
    });
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    for (const node of nodes) {
      re.lastIndex = 0;
      if (!re.test(node.nodeValue)) continue;
      const frag = document.createDocumentFragment();
      appendHighlighted(frag, node.nodeValue, re);
      node.replaceWith(frag);
    }
  }

  // ---------------------------------------------------------------- clipboard

  async function copyToClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch { /* fall through to the textarea fallback */ }
    }
    const active = document.activeElement;
    const ta = el('textarea', { readonly: true, 'aria-hidden': 'true', tabindex: '-1' });
    ta.value = text;
    Object.assign(ta.style, { position: 'fixed', top: '-1000px', left: '0', opacity: '0' });
    document.body.append(ta);
    ta.select();
    ta.setSelectionRange(0, text.length);
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
    if (active && typeof active.focus === 'function') active.focus({ preventScroll: true });
    return ok;
  }

  function copyButton(getText, articleId, queryId, label = '复制话术') {
    const button = el('button', { type: 'button', class: 'copy-btn', title: '复制这段话术，可直接粘贴给客户' }, label);
    button.addEventListener('click', async (event) => {
      event.stopPropagation();
      const text = getText();
      const ok = await copyToClipboard(text);
      window.clearTimeout(button._resetTimer);
      button.classList.toggle('is-copied', ok);
      button.classList.toggle('is-failed', !ok);
      button.textContent = ok ? '已复制 ✓' : '复制失败';
      announce(ok ? '话术已复制到剪贴板' : '复制失败，请手动选中文字复制');
      button._resetTimer = window.setTimeout(() => {
        button.classList.remove('is-copied', 'is-failed');
        button.textContent = label;
      }, 1800);
      if (ok && queryId) sendEvent({ query_id: queryId, article_id: articleId, type: 'copy' });
    });
    return button;
  }

  // 插入 and 「内容有误/已过时」 live in actions.js.
  const { appendWithPlaceholders, insertButton, flagButton } = window.kbActions({
    el, api, ApiError, settle, announce, appendHighlighted, host,
    currentQueryId: () => state.data && state.data.query_id,
  });

  function scriptBlock(text, re, articleId, queryId, meta = {}) {
    const body = el('p', { class: 'script-text' });
    appendWithPlaceholders(body, text, re);
    return el('div', { class: 'script' },
      el('div', { class: 'script-label' },
        el('span', { class: 'script-tag' }, '话术'),
        insertButton(() => text, { articleId, queryId, ...meta }),
        copyButton(() => text, articleId, queryId)),
      body);
  }

  // ---------------------------------------------------------------- feedback

  const feedbackKey = (queryId, articleId) => `${queryId}|${articleId || '*'}`;

  const THANKS = {
    yes: '已记录：已解决，谢谢反馈',
    no: '已记录：未解决，谢谢反馈',
    none: '已记录，谢谢！我们会补充相关内容',
  };

  /** A feedback slot re-renders itself from state.feedback, so card and article view agree. */
  function feedbackSlot(queryId, articleId, label) {
    const slot = el('span', { class: 'feedback-slot', dataset: { fbKey: feedbackKey(queryId, articleId) } });
    slot._render = () => renderFeedbackSlot(slot, queryId, articleId, label);
    slot._render();
    return slot;
  }

  function renderFeedbackSlot(slot, queryId, articleId, label) {
    const key = feedbackKey(queryId, articleId);
    const current = state.feedback.get(key);
    slot.replaceChildren();
    if (current === 'yes' || current === 'no' || current === 'none') {
      slot.append(el('span', { class: 'feedback-thanks', role: 'status' }, THANKS[current]));
      return;
    }
    const pending = current === 'pending';
    const group = el('span', { class: 'feedback', role: 'group', 'aria-label': '反馈' },
      el('span', { class: 'feedback-label' }, label),
      el('button', {
        type: 'button', class: 'btn fb-yes', disabled: pending,
        onclick: (e) => { e.stopPropagation(); submitFeedback(queryId, articleId, true); },
      }, '已解决'),
      el('button', {
        type: 'button', class: 'btn fb-no', disabled: pending,
        onclick: (e) => { e.stopPropagation(); submitFeedback(queryId, articleId, false); },
      }, '未解决'));
    slot.append(group);
    if (slot._error) {
      slot.append(el('span', { class: 'feedback-thanks is-error', role: 'status' }, ' 提交失败，请重试'));
    }
  }

  function refreshFeedback(key, error) {
    for (const slot of document.querySelectorAll('.feedback-slot')) {
      if (slot.dataset.fbKey !== key) continue;
      slot._error = Boolean(error);
      slot._render();
    }
    if (key.endsWith('|*')) renderListFeedback();
  }

  /** One rule for contradictory votes on one query: the latest counts (the reports apply the same
   * rule). A 都没解决 for the list replaces the 已解决 given on its cards, and an 已解决 on a card
   * replaces an earlier 都没解决; the replaced votes show their buttons again. */
  function dropContradicted(queryId, articleId, resolved) {
    for (const [key, value] of [...state.feedback]) {
      if (!key.startsWith(`${queryId}|`)) continue;
      const contradicted = articleId ? (value === 'none' && resolved) : value === 'yes';
      if (contradicted) {
        state.feedback.delete(key);
        refreshFeedback(key);
      }
    }
  }

  async function submitFeedback(queryId, articleId, resolved) {
    const key = feedbackKey(queryId, articleId);
    if (!queryId || state.feedback.get(key) === 'pending') return; // in flight: no double submit
    const wanted = articleId ? (resolved ? 'yes' : 'no') : 'none';
    if (state.feedback.get(key) === wanted) return;
    state.feedback.set(key, 'pending');
    refreshFeedback(key);
    try {
      await settle();
      await api('/api/feedback', {
        method: 'POST',
        body: { query_id: queryId, article_id: articleId || null, resolved },
      });
      state.feedback.set(key, wanted);
      dropContradicted(queryId, articleId, resolved);
      refreshFeedback(key);
      host.emit('feedback', { queryId, articleId: articleId || null, resolved });
      announce('反馈已提交，谢谢');
    } catch {
      state.feedback.delete(key);
      refreshFeedback(key, true);
    }
  }

  function renderListFeedback() {
    const data = state.data;
    const queryId = data && data.query_id;
    if (!queryId || state.view !== 'list') {
      ui.listFeedback.hidden = true;
      return;
    }
    ui.listFeedback.hidden = false;
    const current = state.feedback.get(feedbackKey(queryId, null));
    const label = ui.listFeedback.querySelector('.list-feedback-label');
    if (current === 'none') {
      label.textContent = THANKS.none;
      label.className = 'list-feedback-label feedback-thanks';
      ui.noneHelped.hidden = true;
    } else {
      label.textContent = data.hits && data.hits.length ? '以上结果都没有帮助？' : '没找到需要的内容？';
      label.className = 'list-feedback-label';
      ui.noneHelped.hidden = false;
      ui.noneHelped.disabled = current === 'pending';
    }
  }

  // ---------------------------------------------------------------- status / messages

  function setStatus(text, { loading = false } = {}) {
    ui.status.textContent = text;
    ui.status.classList.toggle('is-loading', loading);
  }

  function showMessage(text, { error = false, retry = false } = {}) {
    ui.message.replaceChildren(document.createTextNode(text));
    if (retry) {
      ui.message.append(el('button', {
        type: 'button', class: 'btn retry', onclick: () => runSearch({ force: true }),
      }, '重试'));
    }
    ui.message.classList.toggle('is-error', error);
    ui.message.setAttribute('role', error ? 'alert' : 'status');
    ui.message.hidden = false;
  }

  function clearResults() {
    state.data = null;
    state.hits = [];
    state.shownKey = null;
    setActive(-1);
    ui.results.replaceChildren();
    ui.banner.hidden = true;
    ui.lowHeading.hidden = true;
    ui.listFeedback.hidden = true;
    ui.message.hidden = true;
    ui.reading.hidden = true;
    ui.reading.replaceChildren();
    ui.input.setAttribute('aria-expanded', 'false');
    ui.took.textContent = '';
  }

  /** Cards to show: the hits, or for a query asking several things a few hits per question. */
  function displayItems(data) {
    const confident = data.confident !== false;
    const questions = Array.isArray(data.questions) ? data.questions : [];
    if (questions.length < 2) {
      return (Array.isArray(data.hits) ? data.hits : []).map((hit) => ({ hit, group: null, confident }));
    }
    const per = Math.max(2, Math.ceil(RESULT_COUNT / questions.length));
    const items = [];
    questions.forEach((question, i) => {
      (question.hits || []).slice(0, per).forEach((hit, j) => items.push({
        hit, confident: question.confident !== false, group: j === 0 ? `问题 ${i + 1}：${question.question}` : null,
      }));
    });
    return items;
  }

  /** "已按「…」搜索": what was searched when the query was read differently from how it was typed. */
  function renderReading(data) {
    const reading = data.reading;
    const fromChat = data.source === 'conversation';
    const spelled = !fromChat && typeof data.spelled_as === 'string' && data.spelled_as;
    if (!reading || (!reading.changed && !fromChat && !spelled && !state.asTyped)) return;
    const questions = Array.isArray(reading.questions) ? reading.questions : [];
    const parts = [];
    if (fromChat) parts.push(data.open === false ? '坐席已回复；以下是客户上一个问题的推荐' : '根据对话中客户的问题推荐');
    if (fromChat && questions.length === 1) parts.push(`客户问「${questions[0]}」`);
    else if (questions.length > 1) parts.push(`识别出 ${questions.length} 个问题，分别搜索`);
    else if (spelled) parts.push(`已按「${spelled}」搜索`);
    else if (state.asTyped) parts.push('已按原文搜索，未纠正错别字');
    else if (reading.changed && questions.length === 1) parts.push(`已按「${questions[0]}」搜索`);
    if (reading.converted) parts.push('繁体已转简体');
    if (Array.isArray(reading.personal_data) && reading.personal_data.length) {
      parts.push(`已去掉${reading.personal_data.map((p) => String(p).replace(/[〔〕]/g, '')).join('、')}`);
    }
    if (reading.truncated) parts.push(`内容超过 ${maxQueryChars} 字，只搜索了开头的第一个问题`);
    const line = [el('span', { class: 'reading-text' }, parts.join(' · '))];
    if (spelled) {
      // One click searches the words as typed: the agent may have meant exactly what they wrote.
      const asTyped = el('button', { type: 'button', class: 'reading-as-typed', 'data-as-typed': '1' }, '仍按原文搜索');
      asTyped.addEventListener('click', () => {
        state.asTyped = true;
        runSearch({ force: true });
      });
      line.push(' ', asTyped);
    }
    ui.reading.replaceChildren(...line);
    ui.reading.hidden = false;
  }

  function showHint() {
    clearResults();
    setStatus('');
    ui.hint.hidden = false;
  }

  // ---------------------------------------------------------------- search

  const currentQuery = () => ui.input.value.trim();
  const searchKey = (q, category) => `${q}\u0000${category}`;

  function cancelSearch() {
    window.clearTimeout(state.timer);
    state.timer = 0;
    if (state.controller) state.controller.abort();
    state.controller = null;
    state.seq += 1; // anything still on its way is now stale
    state.loading = false;
  }

  /** Log the previewed search on screen (once): repeat it with the preview's query_id. Everything
   * that uses a query id (open, copy, insert, vote, flag) awaits this first. */
  function settle() {
    const data = state.data;
    if (!data || data.logged !== false || !data.query_id || !data._params) return Promise.resolve();
    if (state.settling) return state.settling;
    const params = new URLSearchParams(data._params);
    params.delete('log');
    params.set('query_id', data.query_id);
    state.settling = api(`/api/search?${params}`)
      .then(() => {
        data.logged = true;
        host.emit('search', { queryId: data.query_id, q: data.query });
      })
      .catch(() => {})
      .finally(() => { state.settling = null; });
    return state.settling;
  }

  function settleWhenShown() {
    state.settleWanted = true;
    if (!state.loading && state.shownKey === searchKey(currentQuery(), ui.category.value)) settle();
  }

  function scheduleSettle() {
    state.settleWanted = false;
    window.clearTimeout(state.settleTimer);
    state.settleTimer = window.setTimeout(settleWhenShown, SETTLE_MS);
  }

  function scheduleSearch() {
    window.clearTimeout(state.timer);
    state.asTyped = false; // a new text is corrected again

    scheduleSettle();
    if (!currentQuery()) {
      cancelSearch();
      if (state.view === 'list') showHint();
      return;
    }
    state.timer = window.setTimeout(() => runSearch(), DEBOUNCE_MS);
  }

  async function runSearch({ force = false } = {}) {
    window.clearTimeout(state.timer);
    state.timer = 0;
    const q = currentQuery();
    const category = ui.category.value;
    if (!q) {
      cancelSearch();
      showHint();
      return;
    }
    const key = searchKey(q, category);
    if (!force && key === state.shownKey && !state.loading) {
      if (state.view === 'article') showList();
      return;
    }
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const seq = ++state.seq;
    state.loading = true;
    setStatus('搜索中…', { loading: true });

    const tooLong = q.length > maxQueryChars;
    const params = new URLSearchParams({ q: tooLong ? q.slice(0, maxQueryChars) : q, k: String(RESULT_COUNT) });
    if (tooLong) params.set('truncate', '1');
    if (category) params.set('category', category);
    if (state.asTyped) params.set('as_typed', '1');
    params.set('log', '0');
    try {
      const data = await api(`/api/search?${params}`, { signal: controller.signal });
      if (seq !== state.seq) return; // an out-of-order (older) response
      state.loading = false;
      state.controller = null;
      data._params = params.toString();
      data.logged = false; // a preview (log=0): settle() logs it
      renderResults(data, key);
      if (state.settleWanted && key === searchKey(currentQuery(), ui.category.value)) settle();
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      if (seq !== state.seq) return;
      state.loading = false;
      state.controller = null;
      clearResults();
      ui.hint.hidden = true;
      if (state.view === 'article') showList();
      setStatus('搜索失败');
      showMessage(err instanceof ApiError ? err.message : '搜索出错，请重试。',
        { error: true, retry: !(err instanceof ApiError) || err.status === 0 || err.status >= 500 });
    }
  }

  function renderResults(data, key) {
    clearResults();
    state.data = data;
    state.shownKey = key;
    const items = displayItems(data);
    state.hits = items.map((item) => item.hit);
    ui.hint.hidden = true;
    renderReading(data);
    if (state.view === 'article') showList({ restoreScroll: false });
    ui.content.scrollTop = 0;

    const confident = data.confident !== false;
    const n = state.hits.length;
    const re = highlighter(state.hits.flatMap((h) => h.highlights || []));

    const topic = !confident && typeof data.not_covered === 'string' && data.not_covered;
    ui.bannerTopic.hidden = !topic;
    ui.bannerTopic.textContent = topic ? `这类问题（${topic}）知识库未收录。` : '';
    if (!confident) {
      ui.banner.hidden = false;
      ui.lowHeading.hidden = n === 0;
      setStatus(n ? `没有可靠答案 · ${n} 条低置信结果` : '没有可靠答案');
    } else if (n === 0) {
      setStatus('没有结果');
      showMessage('没有找到相关内容，换个说法试试。');
    } else {
      setStatus(`找到 ${n} 条结果`);
    }
    if (typeof data.took_ms === 'number') ui.took.textContent = `${Math.round(data.took_ms)} ms`;

    const frag = document.createDocumentFragment();
    items.forEach((item, index) => frag.append(
      resultCard(item.hit, index, data.query_id, re, item.confident, item.group)));
    ui.results.append(frag);
    ui.input.setAttribute('aria-expanded', n ? 'true' : 'false');
    renderListFeedback();
    // Collapse long passages only when they really overflow.
    window.requestAnimationFrame(() => {
      for (const card of ui.results.children) card._measure && card._measure();
    });
  }

  /** Split passage text into text and script segments, in order. */
  function passageSegments(text, scripts) {
    let segments = [{ script: false, value: text }];
    for (const script of scripts) {
      if (!script) continue;
      const next = [];
      let found = false;
      for (const seg of segments) {
        const at = !found && !seg.script ? seg.value.indexOf(script) : -1;
        if (at < 0) { next.push(seg); continue; }
        found = true;
        if (at > 0) next.push({ script: false, value: seg.value.slice(0, at) });
        next.push({ script: true, value: script });
        const rest = seg.value.slice(at + script.length);
        if (rest) next.push({ script: false, value: rest });
      }
      if (!found) next.push({ script: true, value: script });
      segments = next;
    }
    return segments.filter((s) => s.script || s.value.trim());
  }

  const LIST_ITEM = /^\s*(?:[-*+•]|\d{1,2}[.)、])\s*/;
  const WIDE = /[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]/;

  /** Markdown soft wraps become nothing (CJK) or a space; list items keep their own line. */
  function unwrapLines(text) {
    let out = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      if (!out) { out = line; continue; }
      if (LIST_ITEM.test(line)) { out += `\n${line}`; continue; }
      const joiner = WIDE.test(out.slice(-1)) || WIDE.test(line[0]) ? '' : ' ';
      out += joiner + line;
    }
    return out.replace(/^[ \t]*[-*+][ \t]+/gm, '• ');
  }

  function appendParagraphs(parent, text, re) {
    for (const para of text.split(/\n\s*\n/)) {
      const clean = unwrapLines(para);
      if (!clean) continue;
      const p = el('p', { class: 'para' });
      appendHighlighted(p, clean, re);
      parent.append(p);
    }
  }

  /** In rendered HTML a soft wrap between two CJK characters shows as a stray space: drop it. */
  function joinCjkSoftWraps(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const pattern = /([\u2e80-\u9fff\uff00-\uffef\u3000-\u303f])[ \t]*\n[ \t]*(?=[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f])/g;
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (node.parentElement && node.parentElement.closest('pre, code, .kb-script')) continue;
      if (node.nodeValue.includes('\n')) node.nodeValue = node.nodeValue.replace(pattern, '$1');
    }
  }

  function headingForDisplay(hit) {
    let heading = String(hit.heading || '').trim();
    const title = String(hit.title || '').trim();
    if (title && heading.startsWith(title)) heading = heading.slice(title.length).replace(/^\s*>\s*/, '');
    return heading.replace(/\s*>\s*/g, ' › ');
  }

  function resultCard(hit, index, queryId, re, confident, group = null) {
    const id = `hit-${index}`;
    const titleId = `${id}-title`;
    const headingId = `${id}-heading`;
    const bodyId = `${id}-body`;
    const scripts = Array.isArray(hit.scripts) ? hit.scripts.filter(Boolean) : [];
    const segments = passageSegments(String(hit.text || ''), scripts);
    const heading = headingForDisplay(hit);
    const category = CATEGORIES[hit.category] || hit.category || '未分类';
    const meta = { articleVersion: hit.version, passageId: hit.passage_id };
    // The whole passage as an agent would send it: paragraphs unwrapped, scripts in place.
    const passageText = () => segments.map((s) => (s.script ? s.value.trim() : unwrapLines(s.value)))
      .filter(Boolean).join('\n\n');

    // Collapsed: the text (without scripts) clamped, scripts always visible below it.
    // Expanded: the whole passage in its original order, scripts inline.
    const body = el('div', { class: 'card-body', id: bodyId });
    const scriptStrip = el('div', { class: 'card-scripts' });
    const expandBtn = el('button', {
      type: 'button', class: 'expand-btn', 'aria-expanded': 'false', 'aria-controls': bodyId, hidden: true,
    }, '展开整段 ▾');

    const renderCollapsed = () => {
      body.replaceChildren();
      scriptStrip.replaceChildren();
      const plain = segments.filter((s) => !s.script).map((s) => s.value.trim()).join('\n\n');
      appendParagraphs(body, plain, re);
      body.hidden = !plain.trim();
      for (const s of segments) if (s.script) scriptStrip.append(scriptBlock(s.value, re, hit.article_id, queryId, meta));
      scriptStrip.hidden = !scriptStrip.childElementCount;
      body.classList.add('is-clamped');
    };
    const renderExpanded = () => {
      body.replaceChildren();
      scriptStrip.replaceChildren();
      scriptStrip.hidden = true;
      body.hidden = false;
      for (const s of segments) {
        if (s.script) body.append(scriptBlock(s.value, re, hit.article_id, queryId, meta));
        else appendParagraphs(body, s.value, re);
      }
      body.classList.remove('is-clamped');
    };
    renderCollapsed();

    expandBtn.addEventListener('click', (event) => {
      event.stopPropagation();
      const expand = expandBtn.getAttribute('aria-expanded') !== 'true';
      if (expand) renderExpanded(); else renderCollapsed();
      expandBtn.setAttribute('aria-expanded', String(expand));
      expandBtn.textContent = expand ? '收起 ▴' : '展开整段 ▾';
      if (!expand) card.scrollIntoView({ block: 'nearest' });
    });

    const openBtn = el('button', {
      type: 'button', class: 'btn btn-open',
      onclick: (e) => { e.stopPropagation(); openHit(index); },
    }, '查看全文 →');

    const card = el('li', {
      class: `card${confident ? '' : ' is-low'}`,
      id,
      role: 'option',
      'aria-selected': 'false',
      'aria-labelledby': heading ? `${titleId} ${headingId}` : titleId,
      tabindex: '-1',
      dataset: { index: String(index), articleId: hit.article_id },
    },
    group ? el('p', { class: 'question-label' }, group) : null,
    // A section the customer's message calls for though it did not ask (a chat signal).
    hit.signal ? el('p', { class: 'signal-label' }, `客户消息提到「${hit.signal}」`) : null,
    el('div', { class: 'card-meta' },
      el('span', { class: `badge cat-${hit.category}` }, category),
      confident ? null : el('span', { class: 'low-pill' }, '低置信'),
      el('span', { class: 'card-rank', 'aria-hidden': 'true' }, `#${index + 1}`)),
    el('h3', { class: 'card-title', id: titleId },
      el('button', {
        type: 'button', class: 'card-title-btn', tabindex: '-1',
        onclick: (e) => { e.stopPropagation(); openHit(index); },
      }, hit.title || hit.article_id)),
    heading ? el('p', { class: 'card-heading', id: headingId }, heading) : null,
    body,
    expandBtn,
    scriptStrip,
    el('div', { class: 'card-actions' },
      openBtn,
      insertButton(passageText, { articleId: hit.article_id, queryId, ...meta }),
      passageCopyButton(passageText, hit.article_id, queryId),
      flagButton(() => ({ articleId: hit.article_id, articleVersion: hit.version, queryId })),
      feedbackSlot(queryId, hit.article_id, '有帮助吗？')));

    card._measure = () => {
      if (expandBtn.getAttribute('aria-expanded') === 'true') return;
      const overflows = !body.hidden && body.scrollHeight > body.clientHeight + 2;
      if (!overflows) body.classList.remove('is-clamped');
      expandBtn.hidden = !overflows;
    };

    card.addEventListener('click', (event) => {
      if (event.target.closest('button, a')) return;
      if (window.getSelection && String(window.getSelection()).length) return; // selecting text to copy
      setActive(index, { focusCard: document.activeElement !== ui.input });
    });
    card.addEventListener('dblclick', (event) => {
      if (event.target.closest('button, a, .script')) return;
      openHit(index);
    });
    return card;
  }

  function passageCopyButton(getText, articleId, queryId) {
    const button = copyButton(getText, articleId, queryId, '复制本段');
    button.classList.add('copy-passage');
    button.title = '复制这一段（不只话术）';
    return button;
  }

  // ---------------------------------------------------------------- suggestions from the host's conversation

  let suggestSeq = 0;

  /** The host posted the conversation: show suggestions for the customer's open question(s). */
  async function runSuggest(turns) {
    cancelSearch();
    window.clearTimeout(state.settleTimer);
    const seq = ++suggestSeq;
    setStatus('正在根据对话推荐…', { loading: true });
    try {
      // The newest 50 turns (the server's limit) in the shape it reads; older turns never matter.
      const recent = turns.slice(-50).map((t) => ({ role: String((t && t.role) || ''), text: String((t && t.text) || ''),
        ts: t && (typeof t.ts === 'number' || typeof t.ts === 'string') ? t.ts : null }));
      const data = await api('/api/suggest', { method: 'POST', body: { turns: recent } });
      if (seq !== suggestSeq) return;
      if (!data.query_id) { // greetings only: keep what is on screen
        setStatus('客户的最新消息里没有问题，暂无新推荐');
        return;
      }
      data.logged = true;
      renderResults(data, null);
      host.emit('suggest', { queryId: data.query_id, questions: data.questions.map((q) => q.question) });
    } catch (err) {
      if (seq !== suggestSeq) return;
      clearResults();
      ui.hint.hidden = true;
      setStatus('推荐失败');
      showMessage(err instanceof ApiError ? err.message : '推荐出错，请重试。', { error: true });
    }
  }

  function searchFor(q) {
    ui.input.value = String(q).slice(0, 5000);
    state.settleWanted = true; // a query handed over by the host or the address is meant as it is
    runSearch({ force: true });
  }

  // ---------------------------------------------------------------- selection

  function setActive(index, { focusCard = false, scroll = true } = {}) {
    const cards = ui.results.children;
    if (index >= cards.length) index = cards.length - 1;
    state.active = index;
    for (const card of cards) card.setAttribute('aria-selected', 'false');
    if (index < 0) {
      ui.input.removeAttribute('aria-activedescendant');
      return;
    }
    const card = cards[index];
    card.setAttribute('aria-selected', 'true');
    ui.input.setAttribute('aria-activedescendant', card.id);
    if (focusCard) card.focus({ preventScroll: true });
    if (scroll) card.scrollIntoView({ block: 'nearest' });
  }

  function moveActive(delta, fromInput) {
    const n = state.hits.length;
    if (!n) return;
    let next = state.active + delta;
    if (next < -1) next = -1;
    if (next > n - 1) next = n - 1;
    if (next === -1) {
      setActive(-1);
      ui.input.focus();
      ui.content.scrollTop = 0;
      return;
    }
    setActive(next, { focusCard: !fromInput });
  }

  // ---------------------------------------------------------------- views

  function showList({ restoreScroll = true } = {}) {
    state.view = 'list';
    state.articleStack = [];
    if (state.articleController) state.articleController.abort();
    ui.articleView.hidden = true;
    ui.listView.hidden = false;
    ui.article.replaceChildren();
    if (restoreScroll) ui.content.scrollTop = state.listScroll;
    renderListFeedback();
  }

  function goBack() {
    if (state.view !== 'article') return;
    state.articleStack.pop();
    const previous = state.articleStack[state.articleStack.length - 1];
    if (previous) {
      renderArticle(previous);
      return;
    }
    showList();
    const index = state.active;
    ui.input.focus({ preventScroll: true });
    if (index >= 0) setActive(index, { scroll: false });
  }

  function openHit(index) {
    const hit = state.hits[index];
    if (!hit) return;
    setActive(index, { scroll: false });
    openArticle(hit.article_id, { hit });
  }

  async function openArticle(articleId, { hit = null, push = false } = {}) {
    if (!articleId) return;
    if (state.view === 'list') state.listScroll = ui.content.scrollTop;
    if (!push) state.articleStack = [];
    const queryId = state.data && state.data.query_id;
    state.view = 'article';
    ui.listView.hidden = true;
    ui.listFeedback.hidden = true;
    ui.articleView.hidden = false;
    ui.article.replaceChildren(el('p', { class: 'article-loading', role: 'status' }, '正在打开全文…'));
    barTitle.textContent = hit ? hit.title : '';
    ui.content.scrollTop = 0;

    if (state.articleController) state.articleController.abort();
    const controller = new AbortController();
    state.articleController = controller;
    const seq = ++state.articleSeq;
    await settle();
    if (seq !== state.articleSeq) return;
    const params = queryId ? `?${new URLSearchParams({ query_id: queryId })}` : '';
    try {
      const data = await api(`/api/articles/${encodeURIComponent(articleId)}${params}`, { signal: controller.signal });
      if (seq !== state.articleSeq || state.view !== 'article') return;
      const entry = { data, hit, queryId };
      state.articleStack.push(entry);
      renderArticle(entry, { focus: true });
      host.emit('open', { queryId: queryId || null, articleId: data.id, articleVersion: data.version });
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      if (seq !== state.articleSeq) return;
      ui.article.replaceChildren(el('div', { class: 'message is-error', role: 'alert' },
        err instanceof ApiError ? err.message : '打开全文失败，请重试。'));
    }
  }

  // ---------------------------------------------------------------- article rendering

  const DROP_TAGS = new Set(['SCRIPT', 'STYLE', 'IFRAME', 'OBJECT', 'EMBED', 'LINK', 'META', 'BASE', 'FORM',
    'INPUT', 'BUTTON', 'TEXTAREA', 'SELECT', 'FRAME', 'FRAMESET', 'SVG', 'MATH', 'TEMPLATE', 'NOSCRIPT']);
  const KEEP_ATTRS = new Set(['class', 'id', 'href', 'src', 'alt', 'title', 'colspan', 'rowspan', 'start', 'align']);

  const SAFE_SCHEMES = new Set(['http', 'https', 'mailto']);
  // Browsers drop tabs and newlines anywhere in a URL and control characters and spaces at its
  // ends before reading the scheme, so "java\tscript:" and " javascript:" run script. Remove every
  // ASCII control character and whitespace (and Unicode spaces) before looking for a scheme.
  const URL_NOISE = /[\u0000-\u0020\u007f-\u009f\s]+/g;

  /** Only http, https, mailto and relative URLs (no scheme at all) are kept. */
  function safeUrl(value) {
    const v = String(value ?? '').replace(URL_NOISE, '');
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v);
    return !scheme || SAFE_SCHEMES.has(scheme[1].toLowerCase());
  }

  /** Server-rendered article HTML through an allow-list: no scripts, handlers or js: URLs. */
  function sanitizedFragment(html) {
    const template = document.createElement('template');
    template.innerHTML = String(html || '');
    const all = [...template.content.querySelectorAll('*')];
    for (const node of all) {
      if (!node.isConnected && !template.content.contains(node)) continue;
      if (DROP_TAGS.has(node.tagName.toUpperCase())) { node.remove(); continue; }
      for (const attr of [...node.attributes]) {
        const name = attr.name.toLowerCase();
        if (!KEEP_ATTRS.has(name) || ((name === 'href' || name === 'src') && !safeUrl(attr.value))) {
          node.removeAttribute(attr.name);
        }
      }
      if (node.id) node.id = `kb-${node.id}`; // keep ids from clashing with the panel's own
    }
    for (const a of template.content.querySelectorAll('a[href]')) {
      const href = a.getAttribute('href');
      const linked = /^(?:\.\/)?([a-z0-9-]+)\.md(?:#.*)?$/i.exec(href);
      if (linked) {
        a.dataset.articleId = linked[1];
        a.setAttribute('href', '#');
      } else if (href.startsWith('#')) {
        a.setAttribute('href', `#kb-${href.slice(1)}`);
      } else {
        a.setAttribute('target', '_blank');
        a.setAttribute('rel', 'noopener noreferrer');
      }
    }
    return template.content;
  }

  function scriptTextOf(node) {
    const clone = node.cloneNode(true);
    for (const br of clone.querySelectorAll('br')) br.replaceWith('\n');
    for (const block of clone.querySelectorAll('p, li, div, pre, h1, h2, h3, h4, h5, h6')) block.append('\n');
    return clone.textContent.replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim();
  }

  function formatMeta(data) {
    const parts = [];
    if (data.version !== undefined && data.version !== null) parts.push(`版本 v${data.version}`);
    if (data.updated) parts.push(`更新 ${data.updated}`);
    if (data.owner) parts.push(`维护 ${data.owner}`);
    return parts;
  }

  function renderArticle(entry, { focus = false } = {}) {
    const { data, hit, queryId } = entry;
    const re = highlighter(hit ? hit.highlights : (state.data ? state.hits.flatMap((h) => h.highlights || []) : []));
    const category = CATEGORIES[data.category] || data.category || '未分类';

    const htmlBox = el('div', { class: 'article-html' });
    htmlBox.append(sanitizedFragment(data.html));

    // Scripts: take the plain text to copy before highlighting, then add the copy bar.
    joinCjkSoftWraps(htmlBox);
    const scriptBlocks = [...htmlBox.querySelectorAll('.kb-script')].map((block) => [block, scriptTextOf(block)]);
    highlightTree(htmlBox, re);
    for (const [block, text] of scriptBlocks) {
      block.prepend(el('div', { class: 'script-label' },
        el('span', { class: 'script-tag' }, '话术'),
        insertButton(() => text, { articleId: data.id, articleVersion: data.version, queryId }),
        copyButton(() => text, data.id, queryId)));
    }
    for (const a of htmlBox.querySelectorAll('a[data-article-id]')) {
      a.addEventListener('click', (event) => {
        event.preventDefault();
        openArticle(a.dataset.articleId, { push: true });
      });
    }

    const tags = Array.isArray(data.tags) ? data.tags.filter(Boolean) : [];
    const head = el('header', { class: 'article-head' },
      el('span', { class: `badge cat-${data.category}` }, category),
      el('h2', { class: 'article-title', id: 'article-title' }, data.title || data.id),
      el('div', { class: 'article-meta' }, formatMeta(data).map((p) => el('span', null, p))),
      tags.length ? el('div', { class: 'article-tags', 'aria-label': '标签' }, tags.map((t) => el('span', { class: 'tag' }, t))) : null);

    const feedback = queryId
      ? el('div', { class: 'article-feedback' },
        el('span', { class: 'feedback-label' }, '解决客户问题了吗？'),
        feedbackSlot(queryId, data.id, ''))
      : null;

    ui.article.setAttribute('aria-labelledby', 'article-title');
    barTitle.textContent = data.title || data.id;
    const flag = el('div', { class: 'article-flag' },
      flagButton(() => ({ articleId: data.id, articleVersion: data.version, queryId })));
    ui.article.replaceChildren(head, htmlBox, feedback || '', flag);
    ui.content.scrollTop = 0;

    // Jump to the section the hit came from.
    const wanted = hit ? String(hit.heading || '').split('>').map((s) => s.trim()).filter(Boolean).pop() : '';
    if (wanted) {
      const target = [...htmlBox.querySelectorAll('h2, h3, h4, h5, h6')]
        .find((h) => h.textContent.trim() === wanted);
      // The first section is already in view under the title: keep the title and meta visible.
      if (target && target !== htmlBox.querySelector('h2, h3, h4, h5, h6')) {
        target.classList.add('is-target');
        target.scrollIntoView({ block: 'start' });
      }
    }
    // The bar repeats the title only once the article's own title has scrolled away.
    if (titleObserver) {
      titleObserver.disconnect();
      barTitle.classList.add('is-hidden');
      titleObserver.observe(head.querySelector('.article-title'));
    }
    if (focus) ui.article.focus({ preventScroll: true });
  }

  const titleObserver = 'IntersectionObserver' in window
    ? new IntersectionObserver((entries) => {
      for (const entry of entries) barTitle.classList.toggle('is-hidden', entry.isIntersecting);
    }, { root: ui.content, rootMargin: '-48px 0px 0px 0px' })
    : null;

  // ---------------------------------------------------------------- health

  /** 'gen-20261125T034000-ab12cd' → '11-25 03:40'; anything else is shown as it is. */
  function shortIndexVersion(version) {
    const m = /(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})/.exec(String(version));
    return m ? `${m[2]}-${m[3]} ${m[4]}:${m[5]}` : String(version);
  }

  async function loadHealth() {
    const text = ui.health.querySelector('.health-text');
    try {
      const h = await api('/api/health');
      if (Number.isInteger(h.max_query_chars) && h.max_query_chars > 0) maxQueryChars = h.max_query_chars;
      const parts = [];
      if (h.index_version !== undefined && h.index_version !== null && h.index_version !== '') {
        parts.push(`索引 ${shortIndexVersion(h.index_version)}`);
      }
      if (typeof h.articles === 'number') parts.push(`${h.articles} 篇`);
      const ok = !h.status || ['ok', 'healthy', 'ready'].includes(String(h.status).toLowerCase());
      const needsKey = Boolean(h.auth_required) && !apiKey;
      ui.health.classList.toggle('is-ok', ok && !needsKey);
      ui.health.classList.toggle('is-down', !ok || needsKey);
      text.textContent = needsKey ? '需要 API 密钥' : (ok ? '' : '异常 · ') + (parts.join(' · ') || '已连接');
      ui.health.title = [
        needsKey ? '服务要求 API 密钥：请在地址后加 #key=…' : '',
        `状态：${h.status ?? '未知'}`,
        `索引版本：${h.index_version ?? '未知'}`,
        h.built_at ? `构建时间：${h.built_at}` : '',
        `文章：${h.articles ?? '?'} 篇，段落：${h.passages ?? '?'} 段`,
        h.model ? `模型：${h.model}` : '',
      ].filter(Boolean).join('\n');
    } catch (err) {
      ui.health.classList.remove('is-ok');
      ui.health.classList.add('is-down');
      text.textContent = '服务未连接';
      ui.health.title = err instanceof ApiError ? err.message : '无法连接知识库服务';
    }
  }

  // ---------------------------------------------------------------- keyboard & events

  function focusSearch() {
    if (state.view === 'article') goBack();
    ui.input.focus();
    ui.input.select();
  }

  function clearSearch() {
    cancelSearch();
    ui.input.value = '';
    showHint();
    ui.input.focus();
  }

  function isTextField(node) {
    if (!node || node === document.body) return false;
    const tag = node.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || node.isContentEditable;
  }

  document.addEventListener('keydown', (event) => {
    if (event.isComposing || event.keyCode === 229) return; // the IME is still composing (pinyin)
    const target = event.target;
    const key = event.key;

    if ((event.ctrlKey || event.metaKey) && !event.altKey && (key === 'k' || key === 'K')) {
      event.preventDefault();
      focusSearch();
      return;
    }
    if (key === '/' && !event.ctrlKey && !event.metaKey && !event.altKey && !isTextField(target)) {
      event.preventDefault();
      focusSearch();
      return;
    }
    if (key === 'Escape') {
      if (state.view === 'article') {
        event.preventDefault();
        goBack();
      } else if (target !== ui.category) {
        event.preventDefault();
        clearSearch();
      }
      return;
    }
    if (state.view !== 'list') return;

    if (key === 'ArrowDown' || key === 'ArrowUp') {
      if (target === ui.category || target.tagName === 'TEXTAREA' || event.altKey) return;
      if (!state.hits.length) return;
      event.preventDefault();
      moveActive(key === 'ArrowDown' ? 1 : -1, target === ui.input);
      return;
    }
    if (key === 'Enter') {
      if (target === ui.input) {
        event.preventDefault();
        window.clearTimeout(state.settleTimer);
        settleWhenShown(); // Enter: the agent means this query (logged now, or when its results arrive)
        const key2 = searchKey(currentQuery(), ui.category.value);
        if (state.active >= 0 && key2 === state.shownKey) {
          openHit(state.active);
        } else if (key2 === state.shownKey && state.hits.length) {
          setActive(0);
        } else {
          runSearch();
        }
      } else if (target.classList && target.classList.contains('card')) {
        event.preventDefault();
        openHit(Number(target.dataset.index));
      }
    }
  });

  ui.form.addEventListener('submit', (event) => event.preventDefault());

  ui.input.addEventListener('compositionstart', () => { state.composing = true; });
  ui.input.addEventListener('compositionend', () => {
    state.composing = false;
    scheduleSearch();
  });
  ui.input.addEventListener('input', (event) => {
    if (state.composing || event.isComposing) return;
    scheduleSearch();
  });

  ui.category.addEventListener('change', () => {
    ui.category.classList.toggle('is-active', Boolean(ui.category.value));
    state.settleWanted = true;
    if (currentQuery()) runSearch();
  });

  ui.back.addEventListener('click', () => goBack());

  ui.noneHelped.addEventListener('click', () => {
    if (state.data && state.data.query_id) submitFeedback(state.data.query_id, null, false);
  });

  for (const chip of ui.hint.querySelectorAll('[data-example]')) {
    chip.addEventListener('click', () => {
      ui.input.value = chip.dataset.example;
      ui.input.focus();
      state.settleWanted = true;
      runSearch();
    });
  }

  // Re-measure clamped cards when the column is resized.
  if ('ResizeObserver' in window) {
    let lastWidth = 0;
    new ResizeObserver((entries) => {
      const width = Math.round(entries[0].contentRect.width);
      if (width === lastWidth) return;
      lastWidth = width;
      for (const card of ui.results.children) {
        const body = card.querySelector('.card-body');
        const btn = card.querySelector('.expand-btn');
        if (body && btn && btn.getAttribute('aria-expanded') !== 'true') {
          body.classList.add('is-clamped');
          card._measure && card._measure();
        }
      }
    }).observe(ui.results);
  }

  // ---------------------------------------------------------------- start

  showHint();
  loadHealth();
  window.setInterval(loadHealth, HEALTH_EVERY_MS);
  host.on('conversation', runSuggest);
  host.on('query', searchFor);
  if (host.initialQuery) searchFor(host.initialQuery); // ?q=… from the address or the host's iframe src
  else if (currentQuery()) runSearch(); // the browser restored a previous value
  else ui.input.focus();
  host.ready();

  // For tests and debugging only.
  window.kbPanel = { state, safeUrl };
})();
