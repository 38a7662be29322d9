"""Measure what the 相似问 contribute: evaluate a copy of the articles with fewer of them.

Writes a copy of `articles/` into a scratch folder with each section's questions cut to the first
`--keep` (the editors' guide orders them: clipped query, colloquial question, situation), or with
all questions removed from `--strip-articles` articles picked at random (`--seed`), then runs the
default embedder's eval there (index and, unless `--committed-model`, confidence model in the
scratch folder; nothing in the repository changes).

  --keep K            K questions per section (0: none)
  --strip-articles N  N articles lose all their questions; the rest keep theirs
  --committed-model   judge confidence with the committed model instead of refitting: what happens
                      when an editor publishes an article without questions
  --drop-near-labelled  drop the questions that nearly repeat a labelled query (check_question_overlap.py)

Usage: python scripts/ablate_questions.py [--keep K | --strip-articles N [--seed S]] [--committed-model]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

import yaml
from check_question_overlap import bigram_set, jaccard  # the same measure of "nearly repeats"

from kb_service.evaluation.runner import calibrate, evaluate, load_dev_set, load_own_set, metrics_table
from kb_service.index.embedding import model_key
from kb_service.settings import PROJECT_ROOT, Settings

MODEL, RUNTIME = "m3e-small", "onnx-int8"

def rewrite_questions(text: str, change) -> str:  # type: ignore[no-untyped-def]
    """The article with its front matter's `questions` replaced by change(questions)."""
    head, _, body = text[len("---\n"):].partition("\n---\n")
    meta = yaml.safe_load(head)
    questions = change(meta.get("questions") or {})
    meta.pop("questions", None)
    if questions:
        meta["questions"] = questions
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n" + body


def copy_articles(target: Path, keep: int | None, strip: set[str], near: list[set[str]]) -> None:
    source = PROJECT_ROOT / "articles"
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".md" and path.name.lower() != "readme.md":
            def change(questions: dict, name: str = path.stem) -> dict:
                if name in strip:
                    return {}
                cut = {h: list(qs)[:keep] if keep is not None else list(qs) for h, qs in questions.items()}
                if near:
                    cut = {h: [q for q in qs if all(jaccard(bigram_set(q), b) < 0.5 for b in near)] for h, qs in cut.items()}
                return {h: qs for h, qs in cut.items() if qs}
            text = rewrite_questions(text, change)
        (target / path.name).write_text(text, encoding="utf-8")


def run(args: argparse.Namespace, strip: set[str], near: list[set[str]], sets: dict) -> dict:
    """Index, (calibrate) and evaluate one scratch copy of the articles."""
    scratch = Path(tempfile.mkdtemp(prefix="kb-ablate-"))
    try:
        copy_articles(scratch / "articles", args.keep, strip, near)
        key = model_key(MODEL, RUNTIME)
        for part in ("cache", "models"):  # the eval index's exported model and embeddings: no re-embedding
            found = Path(Settings().index_dir) / "eval" / key / part
            if found.exists():
                shutil.copytree(found, scratch / "indexes" / "eval" / key / part)
        settings = Settings(articles_dir=scratch / "articles", index_dir=scratch / "indexes",
                            confidence_path=Settings().confidence_path if args.committed_model else scratch / "confidence.json")
        if not args.committed_model:
            calibrate(settings, sets["own"], [MODEL])
            fitted = json.loads(settings.confidence_path.read_text(encoding="utf-8"))
            print("confidence:", fitted[f"{key}/hybrid"]["fitted_on"])
        return evaluate(settings, sets, [MODEL])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=int)
    parser.add_argument("--strip-articles", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--committed-model", action="store_true")
    parser.add_argument("--drop-near-labelled", action="store_true")
    parser.add_argument("--own", type=Path, default=PROJECT_ROOT / "eval" / "queries.jsonl")
    parser.add_argument("--dev", type=Path, default=PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl")
    args = parser.parse_args(argv)
    names = sorted(p.stem for p in (PROJECT_ROOT / "articles").glob("*.md") if p.name.lower() != "readme.md")
    strip = set(random.Random(args.seed).sample(names, args.strip_articles)) if args.strip_articles else set()
    sets = {"own": load_own_set(args.own)}
    if args.dev.exists():
        sets["dev"] = load_dev_set(args.dev)
    near = []
    if args.drop_near_labelled:
        near = [bigram_set(json.loads(line)["query"]) for path in (args.own, args.dev) if path.exists()
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = run(args, strip, near, sets)
    for name, designs in results.items():
        print(f"### {name}\n\n{metrics_table(designs, by_kind=False)}\n")
    if strip:
        print(f"articles without questions ({len(strip)}): {', '.join(sorted(strip))}")
        intact = run(args, set(), near, {"own": sets["own"]})  # the same queries, every article with its questions
        for label, inside in (("answered only by those articles", True), ("answered by the others", False)):
            for state, found in (("stripped", results), ("intact", intact)):
                hybrid = next(d for d in found["own"] if d.startswith("hybrid"))
                chosen = [o for o in found["own"][hybrid] if not o.query.negative and (set(o.query.relevant) <= strip) == inside]
                r5 = sum(1 for o in chosen if o.first_answer_rank and o.first_answer_rank <= 5) / max(1, len(chosen))
                mrr = sum(1 / o.first_answer_rank for o in chosen if o.first_answer_rank) / max(1, len(chosen))
                rejected = sum(1 for o in chosen if not o.confident)
                print(f"own answerable, {label}, {state}: {len(chosen)} queries, hybrid R@5 {r5:.3f}, MRR {mrr:.3f}, "
                      f"{rejected} rejected")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
