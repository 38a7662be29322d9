/* kb_service panel: what reaches beyond the panel — 插入 into the chat tool's reply box (script
 * placeholders filled from the host's values) and 「内容有误/已过时」 flags for the editors.
 *
 * Loaded after host.js and before panel.js, which builds these with window.kbActions({...}) from
 * its own helpers (no globals shared otherwise). Everything shown is built with text nodes.
 */
(() => {
  'use strict';

  window.kbActions = ({ el, api, ApiError, settle, announce, appendHighlighted, host, currentQueryId }) => {
    /** Script text with its [placeholders] marked: filled from the host's values, or to be filled. */
    function appendWithPlaceholders(parent, text, re) {
      for (const part of host.placeholderParts(text)) {
        if (!part.placeholder) { appendHighlighted(parent, part.text, re); continue; }
        const value = host.context.values[part.placeholder];
        parent.append(value
          ? el('span', { class: 'ph is-filled', title: `插入时填入：${value}` }, part.text)
          : el('mark', { class: 'ph is-missing', title: '发送前请填写' }, part.text));
      }
    }

    /** 插入: the passage goes into the host's reply box, placeholders filled from its values. */
    function insertButton(getText, meta) {
      if (!host.embedded) return null;
      const button = el('button', { type: 'button', class: 'insert-btn', title: '插入到回复框（占位符按会话信息填写）' }, '插入');
      button.addEventListener('click', async (event) => {
        event.stopPropagation();
        const queryId = meta.queryId || currentQueryId();
        await settle();
        const result = host.insert(getText(), { ...meta, queryId });
        if (!result) return;
        if (queryId) {
          api('/api/events', { method: 'POST', body: { query_id: queryId, article_id: meta.articleId, type: 'copy' },
            keepalive: true }).catch(() => {});
        }
        host.emit('insert', { queryId, articleId: meta.articleId, articleVersion: meta.articleVersion });
        window.clearTimeout(button._resetTimer);
        button.textContent = result.missing.length ? `已插入，待填：${result.missing.join('、')}` : '已插入 ✓';
        button.classList.toggle('is-missing', result.missing.length > 0);
        announce(result.missing.length ? `已插入，请在发送前填写：${result.missing.join('、')}` : '已插入到回复框');
        button._resetTimer = window.setTimeout(() => {
          button.textContent = '插入';
          button.classList.remove('is-missing');
        }, 4000);
      });
      return button;
    }

    const FLAG_REASONS = { wrong: '内容有误', outdated: '已过时', other: '其他问题' };

    /** 「内容有误/已过时」: a small form under the button; the flag goes to the editors' queue with
     * the article version the agent was reading. */
    function flagButton(getTarget) {
      const wrap = el('span', { class: 'flag-slot' });
      const button = el('button', { type: 'button', class: 'btn btn-ghost flag-btn', title: '告诉编辑这篇文章内容有误或已过时' },
        '内容有误/已过时');
      button.addEventListener('click', (event) => {
        event.stopPropagation();
        if (wrap.querySelector('.flag-form')) return;
        wrap.append(flagForm(getTarget(), wrap, button));
      });
      wrap.append(button);
      return wrap;
    }

    function flagForm(target, wrap, button) {
      const reason = el('select', { class: 'flag-reason', 'aria-label': '原因' },
        Object.entries(FLAG_REASONS).map(([value, label]) => el('option', { value }, label)));
      const comment = el('textarea', { class: 'flag-comment', rows: '2', maxlength: '1000', placeholder: '哪里不对？（选填，勿填客户个人信息）' });
      const status = el('span', { class: 'flag-status', role: 'status' });
      const form = el('form', { class: 'flag-form' }, reason, comment,
        el('span', { class: 'flag-actions' },
          el('button', { type: 'submit', class: 'btn flag-submit' }, '提交给编辑'),
          el('button', { type: 'button', class: 'btn btn-ghost flag-cancel', onclick: () => form.remove() }, '取消')),
        status);
      form.addEventListener('click', (event) => event.stopPropagation());
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        status.textContent = '提交中…';
        try {
          await settle();
          await api('/api/flags', { method: 'POST', body: {
            article_id: target.articleId, article_version: target.articleVersion ?? null, reason: reason.value,
            comment: comment.value.trim() || null, query_id: target.queryId || null } });
          host.emit('flag', { articleId: target.articleId, articleVersion: target.articleVersion, reason: reason.value });
          form.remove();
          button.disabled = true;
          button.textContent = `已标记「${FLAG_REASONS[reason.value]}」，谢谢`;
          announce('已提交给编辑，谢谢');
        } catch (err) {
          status.textContent = err instanceof ApiError ? err.message : '提交失败，请重试';
        }
      });
      return form;
    }

    return { appendWithPlaceholders, insertButton, flagButton };
  };
})();
