"""One adoption path for the CLI and the editor API: a proposal id, or a question an editor assigns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kb_service.editorial.adopt import AdoptResult, adopt_question
from kb_service.editorial.proposals import Proposal
from kb_service.masking import mask_personal_data
from kb_service.usage_log.grouping import grouping_form


class AdoptRequestError(ValueError):
    """What to adopt is unclear: unknown proposal id, or a question without article or section."""


def adopt_proposal_or_text(articles_dir: Path, proposals: Sequence[Proposal], what: str,
                           article_id: str | None = None, section: str | None = None) -> AdoptResult:
    """`what` is a proposal id (p-…) or a question text.

    For a proposal, article and section default to the proposal's (an editor may redirect it).
    For a text, the article is required; the section defaults to that of a proposal with the
    same text for that article, else it must be given.
    """
    what = what.strip()
    if what.startswith("p-"):
        proposal = next((p for p in proposals if p.proposal_id == what), None)
        if proposal is None:
            raise AdoptRequestError(f"没有这条建议：{mask_personal_data(what)}（用 kb questions list 查看当前建议）")
        return adopt_question(articles_dir, article_id or proposal.article_id, section or proposal.section, proposal.text)
    if not article_id:
        raise AdoptRequestError("直接给出问法时需要指定文章（--article）")
    if not section:
        wanted = grouping_form(mask_personal_data(what))
        match = next((p for p in proposals if p.article_id == article_id and p.normalised == wanted), None)
        if match is None:
            raise AdoptRequestError("请指定小节（--section）：这条问法不在该文章的建议中")
        section = match.section
    return adopt_question(articles_dir, article_id, section, what)
