/* kb_service panel ↔ chat tool: the postMessage protocol, the host's context and script placeholders.
 *
 * The panel may run on its own (http://…/) or inside an iframe of the agents' chat tool. In a
 * frame, the host talks to it with window.postMessage (protocol version 1, docs/integration.md):
 *
 *   host → panel  {type: 'kb:context', agentId, sessionId, values: {客户姓名: '张先生', …}}
 *                 {type: 'kb:conversation', turns: [{role: 'customer'|'agent', text, ts}], agentId?, sessionId?}
 *                 {type: 'kb:query', q}
 *   panel → host  {type: 'kb:ready', version: 1}
 *                 {type: 'kb:insert', text, articleId, articleVersion, passageId, queryId, filled, missing}
 *                 {type: 'kb:event', name: 'search'|'suggest'|'open'|'copy'|'insert'|'feedback'|'flag', …}
 *
 * Messages are accepted only from the parent window (and, with ?host_origin=…, only from that
 * origin); the panel posts only to that origin (else to the referrer's). Loaded before panel.js,
 * which reads everything through window.kbHost.
 */
(() => {
  'use strict';

  const PROTOCOL_VERSION = 1;
  const params = new URLSearchParams(window.location.search);
  const embedded = window.parent && window.parent !== window;

  function referrerOrigin() {
    try { return document.referrer ? new URL(document.referrer).origin : ''; } catch { return ''; }
  }
  const hostOrigin = params.get('host_origin') || referrerOrigin();

  const context = {
    agentId: params.get('agent_id') || '',
    sessionId: params.get('session_id') || '',
    values: {},
  };
  const handlers = { conversation: [], query: [], context: [] };

  function clean(value, max = 128) {
    return typeof value === 'string' || typeof value === 'number' ? String(value).trim().slice(0, max) : '';
  }

  function setContext(message) {
    if (message.agentId !== undefined) context.agentId = clean(message.agentId);
    if (message.sessionId !== undefined) context.sessionId = clean(message.sessionId);
    if (message.values && typeof message.values === 'object') {
      const values = {};
      for (const [name, value] of Object.entries(message.values)) {
        const key = clean(name, 32);
        const text = clean(value, 200);
        if (key && text) values[key] = text;
      }
      context.values = values;
    }
  }

  /** Headers every API call carries, so the log knows which agent and which chat it came from. */
  function idHeaders() {
    // Headers carry only Latin-1: an id with other characters (坐席张三) goes percent-encoded.
    const safe = (value) => (/^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value));
    const headers = {};
    if (context.agentId) headers['X-Agent-Id'] = safe(context.agentId);
    if (context.sessionId) headers['X-Session-Id'] = safe(context.sessionId);
    return headers;
  }

  function post(message) {
    if (!embedded) return;
    try { window.parent.postMessage(message, hostOrigin || '*'); } catch { /* a closed or foreign host */ }
  }

  function emit(name, detail) {
    post({ type: 'kb:event', name, ...(detail || {}) });
  }

  // A placeholder is a short bracketed name not followed by "(" (that would be a Markdown link).
  const PLACEHOLDER = /\[([^\[\]\n]{1,12})\](?!\()/g;

  /** Fill [客户姓名]-style placeholders from the host's values. The article's words are never
   * changed otherwise; unknown placeholders stay as they are and are listed in `missing`. */
  function fillPlaceholders(text) {
    const filled = {};
    const missing = [];
    const result = String(text).replace(PLACEHOLDER, (whole, name) => {
      const key = name.trim();
      const value = Object.prototype.hasOwnProperty.call(context.values, key) ? context.values[key] : '';
      if (value) { filled[key] = value; return value; }
      if (!missing.includes(key)) missing.push(key);
      return whole;
    });
    return { text: result, filled, missing };
  }

  /** Pieces of `text` for display: {text, placeholder: name|null, filled: bool}. */
  function placeholderParts(text) {
    const parts = [];
    let last = 0;
    PLACEHOLDER.lastIndex = 0;
    let m;
    while ((m = PLACEHOLDER.exec(text)) !== null) {
      if (m.index > last) parts.push({ text: text.slice(last, m.index), placeholder: null });
      parts.push({ text: m[0], placeholder: m[1].trim() });
      last = m.index + m[0].length;
    }
    if (last < text.length) parts.push({ text: text.slice(last), placeholder: null });
    return parts;
  }

  /** Send a passage to the host's reply box. Returns the fill result, or null outside a frame. */
  function insert(text, meta) {
    const result = fillPlaceholders(text);
    if (!embedded) return null;
    post({
      type: 'kb:insert', text: result.text, articleId: meta.articleId, articleVersion: meta.articleVersion,
      passageId: meta.passageId || null, queryId: meta.queryId || null, filled: result.filled, missing: result.missing,
    });
    return result;
  }

  window.addEventListener('message', (event) => {
    if (!embedded || event.source !== window.parent) return;
    if (params.get('host_origin') && event.origin !== params.get('host_origin')) return;
    const message = event.data;
    if (!message || typeof message !== 'object' || typeof message.type !== 'string') return;
    if (message.type === 'kb:context') {
      setContext(message);
      handlers.context.forEach((fn) => fn(context));
    } else if (message.type === 'kb:conversation' && Array.isArray(message.turns)) {
      setContext(message);
      handlers.conversation.forEach((fn) => fn(message.turns));
    } else if (message.type === 'kb:query' && typeof message.q === 'string') {
      handlers.query.forEach((fn) => fn(message.q));
    }
  });

  window.kbHost = {
    embedded,
    context,
    idHeaders,
    insert,
    emit,
    fillPlaceholders,
    placeholderParts,
    on(name, fn) { handlers[name].push(fn); },
    ready() { post({ type: 'kb:ready', version: PROTOCOL_VERSION }); },
    initialQuery: params.get('q') || '',
  };
})();
