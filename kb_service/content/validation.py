"""Rules an article must pass before it is indexed (`kb check`).

Per-file rules live next to parsing (articles.py); here are the rules that need the content or
the whole collection: section sizes, links, duplicates, forbidden phrases in scripts, and raw
HTML (which would escape the script audit).
"""

from __future__ import annotations

import bisect
import html
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kb_service.content.articles import FENCE, ArticleCache, load_articles
from kb_service.content.chunking import chunk_article, display_text
from kb_service.content.lexicon import load_lexicon
from kb_service.content.not_covered import load_not_covered, not_covered_file
from kb_service.content.section_questions import (
    load_section_questions,
    section_questions_file,
    unknown_sections,
)
from kb_service.models import Article, Passage, Problem
from kb_service.settings import Settings

# The courseware's 禁忌用语: never in text an agent pastes to a customer.
FORBIDDEN_PHRASES: tuple[str, ...] = (
    "这不是我的责任",
    "您搞错了",
    "您不懂",
    "这是规定",
    "没办法",
    "等一下",
    "稍等",
    "我不知道",
    "不可能",
    "绝对不行",
    "您必须",
    "您应该",
    "这很简单",
    "这很容易",
)

_LINK_TARGET = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

# Raw HTML in a body. The Markdown renderer passes it through, so a <div class="kb-script"> would
# get the panel's copy button without the forbidden-phrase audit a ```script block gets, the server
# strips most other HTML before display, and search cards show the tags as text. Refused as a
# whole; the most dangerous forms are named in the message. Fenced code and code spans are text.
_CODE_FENCE_OPEN = re.compile(r"^(`{3,}|~{3,})")  # the renderer only sees fences at column 0
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(.+?)(?<!`)\1(?!`)")
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?=[\s/>]|$)")
_HTML_COMMENT = re.compile(r"<!--")
_EVENT_HANDLER = re.compile(r"(?:^|(?<=[\s\"'/]))(on[a-z]+)\s*=", re.IGNORECASE)
_SCRIPT_CLASS = re.compile(r"\bclass\s*=[^>]*\bkb-script\b", re.IGNORECASE)
# Browsers ignore tabs and newlines (and edges of control characters and spaces) in a URL's
# scheme, and entities are decoded first: "java&#9;script:" is a javascript: link.
_SCHEME_NOISE = r"[\x00-\x20\x7f]*"
_SCRIPT_URL = re.compile(
    r"(?<![A-Za-z0-9+.-])(?:"
    + "|".join(_SCHEME_NOISE.join(scheme) for scheme in ("javascript", "vbscript"))
    + rf"){_SCHEME_NOISE}:",
    re.IGNORECASE,
)
DANGEROUS_TAGS = frozenset({"script", "iframe", "form", "object", "embed", "style"})
RAW_HTML_ADVICE = "use a ```script block for 话术 (only those are checked for forbidden phrases) and Markdown for the rest"


@dataclass
class CheckReport:
    articles: list[Article] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    broken_paths: set[Path] = field(default_factory=set)
    # Not problems (the article indexes and serves), but worth an editor's look.
    notes: list[Problem] = field(default_factory=list)
    unasked_sections: list[Problem] = field(default_factory=list)  # sections without 相似问 (also in notes)

    @property
    def ok(self) -> bool:
        return not self.problems


def sections_without_questions(article: Article) -> list[Problem]:
    """Sections no 相似问 point at: reached only through their own wording, and their answerable
    questions carry no question match for the confidence model (README, "Known limits")."""
    return [Problem(article.path, s.line, f"section '{s.heading}' has no 相似问 (front matter 'questions')")
            for s in article.sections if s.heading_path and not s.questions]


def content_problems(article: Article, settings: Settings, known_files: set[str]) -> list[Problem]:
    return (section_problems(article, settings) + link_problems(article, link_targets(article), known_files)
            + raw_html_problems(article))


def _lines_outside_code(article: Article) -> list[tuple[int, str]]:
    """(line number, text) of body lines the renderer treats as Markdown, code spans blanked.

    A fence left open is not code to the renderer, so its lines are returned too.
    """
    found: list[tuple[int, str]] = []
    fence: str | None = None
    fenced: list[tuple[int, str]] = []
    for number, line in enumerate(article.markdown.splitlines(), start=article.body_line):
        if fence is not None:
            if line.rstrip(" ") == fence:
                fence, fenced = None, []
            else:
                fenced.append((number, line))
            continue
        opening = _CODE_FENCE_OPEN.match(line)
        if opening and FENCE.match(line):
            fence, fenced = opening.group(1), []
            continue
        found.append((number, _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)))
    return found + fenced


def _raw_html_found(line: str, script_url: bool) -> list[str]:
    """What makes one line raw HTML, most dangerous first, for the editor's message."""
    tags: dict[str, str] = {}
    for match in _HTML_TAG.finditer(line):
        name = match.group(2).lower()
        if not match.group(1) or name not in tags:
            tags[name] = f"<{match.group(1)}{name}>"
    found: list[str] = []
    if _SCRIPT_CLASS.search(line):
        found.append('class="kb-script"')
    found += [shown for name, shown in tags.items() if name in DANGEROUS_TAGS]
    found += [f"{m.group(1).lower()}=" for m in _EVENT_HANDLER.finditer(line)]
    if script_url:
        found.append("javascript: link")
    found += [shown for name, shown in tags.items() if name not in DANGEROUS_TAGS]
    if _HTML_COMMENT.search(line):
        found.append("<!-- comment -->")
    return list(dict.fromkeys(found))


def _script_url_lines(lines: list[tuple[int, str]]) -> set[int]:
    """Lines where a javascript: (or vbscript:) URL starts, also when its scheme is split by an
    entity, a tab or a line break ("java&#9;script:", "java<newline>script:"), as browsers read it."""
    numbers = [number for number, _ in lines]
    texts = [html.unescape(text) for _, text in lines]
    starts: list[int] = []
    offset = 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 1
    joined = "\n".join(texts)
    return {numbers[bisect.bisect_right(starts, m.start()) - 1] for m in _SCRIPT_URL.finditer(joined)}


def raw_html_problems(article: Article) -> list[Problem]:
    """Raw HTML (and javascript: links) in the body, one problem per line that holds any."""
    lines = sorted(_lines_outside_code(article))
    script_urls = _script_url_lines(lines)
    problems: list[Problem] = []
    for number, line in lines:
        found = _raw_html_found(line, number in script_urls)
        if found:
            problems.append(Problem(article.path, number, f"raw HTML in article body ({', '.join(found)}): {RAW_HTML_ADVICE}"))
    return problems


def section_problems(article: Article, settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if not article.sections:
        problems.append(Problem(article.path, article.body_line, "article has no sections"))
    for section in article.sections:
        length = len(display_text(section.markdown))
        where = section.heading or article.title
        if length < settings.min_section_chars:
            problems.append(Problem(article.path, section.line, f"section '{where}' is empty or too short ({length} chars)"))
        elif length > settings.max_passage_chars:
            problems.append(
                Problem(
                    article.path,
                    section.line,
                    f"section '{where}' is too long ({length} > {settings.max_passage_chars} chars)",
                )
            )
        for script in section.scripts:
            if not script.text:
                problems.append(Problem(article.path, script.line, "empty script block"))
            for phrase in FORBIDDEN_PHRASES:
                if phrase in script.text:
                    offset = next(i for i, line in enumerate(script.text.splitlines()) if phrase in line)
                    problems.append(
                        Problem(article.path, script.line + 1 + offset, f"forbidden phrase '{phrase}' in script block")
                    )
    return problems


def link_targets(article: Article) -> list[tuple[int, str, str]]:
    """(line, target, file name) of every link to another article."""
    found: list[tuple[int, str, str]] = []
    for number, line in enumerate(article.markdown.splitlines(), start=article.body_line):
        for target in _LINK_TARGET.findall(line):
            if re.match(r"^[a-z]+://|^mailto:|^#", target):
                continue
            name = target.split("#", 1)[0]
            if name.endswith(".md"):
                found.append((number, target, Path(name).name))
    return found


def link_problems(article: Article, links: list[tuple[int, str, str]], known_files: set[str]) -> list[Problem]:
    return [Problem(article.path, number, f"broken link to '{target}'") for number, target, name in links
            if name not in known_files]


def duplicate_problems(articles: list[Article]) -> list[Problem]:
    problems: list[Problem] = []
    for attribute in ("id", "title"):
        seen: dict[str, list[Article]] = defaultdict(list)
        for article in articles:
            seen[getattr(article, attribute)].append(article)
        for value, group in seen.items():
            for duplicate in group[1:]:
                first = group[0]
                problems.append(
                    Problem(duplicate.path, _meta_line(duplicate.path, attribute), f"duplicate {attribute} '{value}' (also in {first.path.name})")
                )
    return problems


def _meta_line(path: Path, name: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(f"{name}:"):
            return number
    return 1


def check_knowledge_base(
    articles_dir: Path, settings: Settings, lexicon_path: Path | None = None, cache: ArticleCache | None = None
) -> CheckReport:
    """Validate every article; the report's articles/passages are the ones safe to index."""
    loaded = load_articles(articles_dir, cache)
    report = CheckReport(problems=list(loaded.problems))
    report.broken_paths = {p.path for p in loaded.problems}
    known = {a.path.name for a in loaded.articles} | {p.path.name for p in loaded.problems}
    per_article = list(loaded.articles)
    for problem in duplicate_problems(per_article):
        report.problems.append(problem)
        report.broken_paths.add(problem.path)
    limits = (settings.min_section_chars, settings.max_passage_chars)
    for article in per_article:
        if cache is not None:
            found = cache.memo(article, f"sections{limits}", lambda a=article: section_problems(a, settings))
            found = found + link_problems(article, cache.memo(article, "links", lambda a=article: link_targets(a)), known)
            found = found + cache.memo(article, "raw_html", lambda a=article: raw_html_problems(a))
        else:
            found = content_problems(article, settings, known)
        report.problems.extend(found)
        if found:
            report.broken_paths.add(article.path)
    lexicon_file = lexicon_path if lexicon_path is not None else settings.lexicon_path
    if lexicon_file and Path(lexicon_file).exists():
        report.problems.extend(load_lexicon(Path(lexicon_file)).problems)
    report.problems.extend(load_not_covered(not_covered_file(settings.not_covered_path, articles_dir)).problems)
    report.articles = [a for a in per_article if a.path not in report.broken_paths]
    for article in report.articles:
        report.unasked_sections.extend(sections_without_questions(article))
    report.notes.extend(report.unasked_sections)
    for article in report.articles:
        if cache is not None:
            report.passages.extend(cache.memo(article, f"passages{settings.max_passage_chars}",
                                              lambda a=article: chunk_article(a, settings.max_passage_chars)))
        else:
            report.passages.extend(chunk_article(article, settings.max_passage_chars))
    questions_file = section_questions_file(settings.section_questions_path, articles_dir)
    section_questions = load_section_questions(questions_file)
    report.problems.extend(section_questions.problems)
    report.notes.extend(unknown_sections(questions_file, section_questions,
                                         {(p.article_id, p.heading) for p in report.passages}))
    report.problems.sort(key=lambda p: (str(p.path), p.line))
    return report
