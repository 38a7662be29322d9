"""Article Markdown → the safe HTML the panel shows, with script blocks marked for copying."""

from __future__ import annotations

import functools
import re
import secrets

import markdown as markdown_lib
import nh3

# Fenced code gets this class prefix instead of markdown's "language-". It is random per process,
# so an editor cannot type it: only a real ```script block (whose text `kb check` audits for
# forbidden phrases) becomes the panel's copyable <div class="kb-script">; a raw
# <div class="kb-script"> or <code class="language-script"> in an article loses its class.
_FENCE_CLASS_PREFIX = f"kb{secrets.token_hex(8)}-"
_SCRIPT_MARKER = f"{_FENCE_CLASS_PREFIX}script"
_SCRIPT_BLOCK = re.compile(rf'<pre><code class="{_SCRIPT_MARKER}">(.*?)</code></pre>', re.DOTALL)
_SCRIPT_DIV_MARKED = f'<div class="{_SCRIPT_MARKER}">'

# What the Markdown renderer (fenced_code, tables) produces, and nothing else: raw HTML in an
# article is untrusted (anyone who can edit an article could otherwise run script in every
# agent's panel), so the rendered body goes through an allow-list sanitiser before it is served.
ARTICLE_TAGS = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote",
    "ul", "ol", "li", "em", "strong", "code", "pre", "a",
    "table", "thead", "tbody", "tr", "th", "td", "div",
})
# Dropped with their content: what is inside them is code or widgets, never article text.
ARTICLE_DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "applet", "noscript", "noembed", "noframes",
    "template", "textarea", "select", "svg", "math", "frame", "frameset",
})
ARTICLE_URL_SCHEMES = frozenset({"http", "https", "mailto"})  # relative URLs pass as well
_ALIGN = {"align": {"left", "center", "right"}}

_article_cleaner = nh3.Cleaner(
    tags=set(ARTICLE_TAGS),
    clean_content_tags=set(ARTICLE_DROPPED_WITH_CONTENT),
    attributes={"a": {"href", "title"}},
    tag_attribute_values={"div": {"class": {_SCRIPT_MARKER}}, "th": _ALIGN, "td": _ALIGN},
    url_schemes=set(ARTICLE_URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def _script_div(match: re.Match[str]) -> str:
    # Content is already HTML-escaped by the markdown renderer; keep paragraphs and line breaks
    # as markup so the panel's copy button reproduces them.
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", match.group(1)) if p.strip()]
    body = "".join("<p>" + p.replace("\n", "<br>\n") + "</p>" for p in paragraphs)
    return f"{_SCRIPT_DIV_MARKED}{body}</div>"


@functools.lru_cache(maxsize=512)
def render_article_html(markdown_text: str) -> str:
    """Markdown → safe HTML for the panel; cached because the same few articles are opened all day.

    Sanitised on the server (not only in the panel) so every client of /api/articles gets HTML
    without scripts, event handlers, frames, forms or javascript: links.
    """
    rendered = markdown_lib.markdown(
        markdown_text,
        extensions=["fenced_code", "tables"],
        extension_configs={
            "fenced_code": {"lang_prefix": _FENCE_CLASS_PREFIX},
            # align="…" rather than style="text-align: …": no style attribute is let through.
            "tables": {"use_align_attribute": True},
        },
        output_format="html",
    )
    cleaned = _article_cleaner.clean(_SCRIPT_BLOCK.sub(_script_div, rendered))
    return cleaned.replace(_SCRIPT_DIV_MARKED, '<div class="kb-script">')
