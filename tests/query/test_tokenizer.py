from collections import Counter
from pathlib import Path

from kb_service.content.lexicon import load_lexicon
from kb_service.query.spelling import HomophoneCorrector
from kb_service.query.tokenizer import DomainTokenizer, bigrams, words


def test_domain_words_stay_whole_and_stop_words_go() -> None:
    tokenizer = DomainTokenizer(["第三者责任险", "三者险", "交强险"])
    tokens = words("三者险赔多少？第三者责任险和交强险有啥区别", tokenizer)
    assert "三者险" in tokens and "第三者责任险" in tokens and "交强险" in tokens
    assert not {"啥", "有", "和"} & set(tokens)


def test_dedicated_tokenizer_leaves_global_jieba_alone() -> None:
    import jieba

    DomainTokenizer(["怪词测试"]).spans("怪词测试")
    assert "怪词测试" not in list(jieba.cut("怪词测试"))


def test_bigrams_cover_cjk_runs_and_keep_ascii_words() -> None:
    assert bigrams("水淹车 KPI") == ["水淹", "淹车", "kpi"]
    assert bigrams("全角ＡＰＰ") == ["全角", "app"]  # NFKC: full-width → half-width


def test_lexicon_expands_colloquial_forms_and_fixes_listed_typos(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("synonyms:\n  第三者责任险: [三者险]\n  盗抢险: [丢车, 被偷]\ntypos:\n  理陪: 理赔\n", encoding="utf-8")
    lexicon = load_lexicon(path)
    assert lexicon.problems == []
    assert lexicon.expansions("车被偷了 三者险赔吗") == ["第三者责任险", "盗抢险"]
    assert lexicon.expansions("第三者责任险") == []
    assert lexicon.correct_typos("理陪流程") == "理赔流程"


def test_homophone_corrector_maps_input_method_typos_to_known_words() -> None:
    corrector = HomophoneCorrector.build(Counter({"理赔": 50, "盗抢": 10, "投诉": 40, "定损": 20, "报案": 30}))
    assert corrector.corrections("理陪流程") == [("理陪", "理赔")]
    assert corrector.corrections("到抢要等多久") == [("到抢", "盗抢")]
    assert corrector.corrections("定顺多久") == [("定顺", "定损")]  # fuzzy s/sh
    assert corrector.corrections("投诉怎么报案") == []  # correct words are left alone
    # A slip swaps a character and keeps the rest: 做违 → 作为 and 税是 → 随时 share none.
    assert HomophoneCorrector.build(Counter({"作为": 9, "随时": 9})).corrections("这么做违法吗 车船税是多少") == []


def test_only_domain_terms_are_reached_by_a_fuzzy_sound() -> None:
    from kb_service.query.spelling import sound_table

    counts = {"定损": 20, "索要": 20, "个性": 20, "质检": 20}
    corrector = HomophoneCorrector.merged([sound_table(counts)], [counts], fuzzy_words={"定损"})
    assert corrector.corrections("定顺多久") == [("定顺", "定损")]  # shun ~ sun, a domain term
    assert corrector.corrections("他说要退保") == []  # shuo ~ suo, but 索要 is an everyday word
    assert corrector.corrections("泄露个信") == []  # xin ~ xing
    assert corrector.corrections("值检怎么打分") == [("值检", "质检")]  # exact sound: any word
    assert HomophoneCorrector.merged([sound_table(counts)], [counts]).corrections("他说要退保") == [("说要", "索要")]
    # The same holds for words typed as pinyin.
    assert corrector.spelled_words("dingshun shuoyao suoyao") == [("dingshun", "定损"), ("suoyao", "索要")]


def test_corrector_tables_merge_by_passage_count() -> None:
    from kb_service.query.spelling import sound_table

    base = sound_table({"理赔": 50, "投诉": 40})
    update = sound_table({"理赔": 3, "里培": 9, "盗抢": 2})  # 里培 sounds like 理赔 but is rarer overall
    corrector = HomophoneCorrector.merged([base, update], [{"理赔": 50, "投诉": 40}, {"理赔": 3, "里培": 9, "盗抢": 2}])
    assert corrector.corrections("理陪流程") == [("理陪", "理赔")]
    assert corrector.corrections("到抢") == [("到抢", "盗抢")]  # words only the update has count too
    assert {"里培", "盗抢", "投诉"} <= corrector.vocabulary


def test_corrector_leaves_words_typed_on_purpose_alone() -> None:
    corrector = HomophoneCorrector.build(Counter({"出示": 5, "例示": 5, "盗抢险": 5, "盗抢": 5}))
    # 出事 is a word the agent meant; 例是 cuts through 比例: neither is a typo.
    assert corrector.corrections("出事了", intended=[(0, 2)]) == []
    assert corrector.corrections("比例是多少", intended=[(0, 2), (3, 5)]) == []
    assert corrector.corrections("出事了") == [("出事", "出示")]  # what the guard prevents
    assert corrector.corrections("比例是多少") == [("例是", "例示")]
    # A longer stretch may contain an intended word: 到抢险 → 盗抢险 although 抢险 is a word.
    assert ("到抢险", "盗抢险") in corrector.corrections("到抢险要等多久", intended=[(1, 3)])


def test_words_typed_as_pinyin_become_the_articles_words() -> None:
    corrector = HomophoneCorrector.build(Counter({"理赔": 50, "报案": 30, "资料": 20, "电销": 5, "背景": 2}))
    assert corrector.spelled_words("lipei要多久") == [("lipei", "理赔")]
    assert corrector.spelled_words("先bao an还是先打119") == [("bao an", "报案")]  # typed spaces are boundaries
    assert corrector.spelled_words("lipei ziliao") == [("lipei ziliao", "理赔资料")]  # several words in one run
    assert corrector.spelled_words("call客户 dianxiao") == [("dianxiao", "电销")]
    # English and acronyms do not read as whole vocabulary words; single syllables never count.
    assert corrector.spelled_words("KPI emoji list women ai bot") == []
    assert corrector.spelled_words("理赔") == []


def test_domain_terms_typed_by_their_initials_become_the_terms() -> None:
    from kb_service.query.spelling import sound_table

    articles = {"交强险": 40, "三者险": 30, "商业险": 20, "理赔": 50}
    lexicon = {"交强险": 1, "三者险": 1, "三责险": 1, "商业险": 1, "车损险": 1, "附加险": 1, "附加项": 1}
    corrector = HomophoneCorrector.merged([sound_table(articles), sound_table(lexicon)], [articles, lexicon],
                                          spelling_tables=[sound_table(articles)], fuzzy_words=lexicon)
    assert corrector.spelled_words("jqx跟syx啥区别") == [("jqx", "交强险"), ("syx", "商业险")]
    assert corrector.spelled_words("szx赔多少") == [("szx", "三者险")]  # shared initials: the articles' term
    assert corrector.spelled_words("csx") == [("csx", "车损险")]  # a lexicon term the articles lack still counts
    assert corrector.spelled_words("fjx") == []  # 附加险 or 附加项: neither is the articles' word, so no guess
    # Acronyms with a vowel, two letters, and consonant runs that spell no term stay as typed.
    assert corrector.spelled_words("kpi vip app it qc sms crm ppt") == []
    # Only the lexicon's terms are read from initials, never any article word.
    assert HomophoneCorrector.build(Counter(articles)).spelled_words("jqx") == []


def test_an_unreadable_run_of_letters_costs_one_pass_not_every_segmentation() -> None:
    from kb_service.query.spelling import pinyin_syllables, syllable_splits

    class CountingSet:
        def __init__(self) -> None:
            self.lookups = 0

        def __contains__(self, item: object) -> bool:
            self.lookups += 1
            return item in pinyin_syllables()

    counting = CountingSet()
    # Each "xian" reads two ways, so a failing tail used to make the search try 2^49 prefixes.
    assert syllable_splits("xian" * 49 + "q", syllables=counting) == []
    assert counting.lookups < 6 * 200
    assert syllable_splits("xian") == [["xian"], ["xi", "an"]]
    assert len(syllable_splits("xian" * 49)) == 16  # readable: capped, still cheap


def test_pinyin_prefers_the_articles_word_over_a_lexicon_variant_with_its_sound() -> None:
    from kb_service.query.spelling import sound_table

    articles, lexicon = {"保险": 111}, {"报险": 10_000}  # a lexicon colloquial form of 报案, same sound
    corrector = HomophoneCorrector.merged([sound_table(articles), sound_table(lexicon)], [articles, lexicon],
                                          spelling_tables=[sound_table(articles)])
    assert corrector.spelled_words("baoxian") == [("baoxian", "保险")]


def test_query_analyzer_guards_common_words_from_typo_correction() -> None:
    from kb_service.query.analysis import QueryAnalyzer

    tokenizer = DomainTokenizer(["理赔", "盗抢险"])
    corrector = HomophoneCorrector.build(Counter({"理赔": 50, "出示": 3, "盗抢险": 5}))
    analyzer = QueryAnalyzer(tokenizer, load_lexicon(Path("/nonexistent")), corrector)
    assert analyzer.analyze("出事好几天了还能报吗").additions == ()  # 出事 is common Chinese
    assert analyzer.analyze("理陪多久").additions == ("理赔",)
    assert analyzer.analyze("理陪多久").read_as_known == ("理陪",)  # understood, not an unknown word
    assert analyzer.analyze("出事好几天了还能报吗").read_as_known == ()
    assert "盗抢险" in analyzer.analyze("到抢险为啥要等那么久").additions
    corrected = dict(analyzer.analyze("理培材料").terms.words)
    assert corrected["理赔"] == corrected["材料"] == 1.0  # a correction weighs what the typed word would have
    spelled = analyzer.analyze("lipei多久")  # pinyin is rewritten in place, like a listed typo
    assert spelled.corrected == spelled.semantic_text == "理赔多久" and "理赔" in dict(spelled.terms.words)


def test_lexicon_form_inside_a_longer_word_is_not_that_form(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("synonyms:\n  续保: [续费]\n", encoding="utf-8")
    lexicon = load_lexicon(path)
    assert lexicon.expansions("手续费要多少", enclosing=[(0, 3)]) == []  # 续费 sits inside 手续费
    assert lexicon.expansions("续费要多少", enclosing=[(0, 2)]) == ["续保"]  # the form itself is fine
    assert lexicon.expansions("手续费要多少") == ["续保"]  # without word spans: plain substring match
