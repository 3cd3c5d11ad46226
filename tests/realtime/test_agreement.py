"""LocalAgreement-2: only what two consecutive hypotheses agree on is committed, and it only grows."""

from __future__ import annotations

from gateway.realtime.agreement import LocalAgreement, ends_sentence, finished_sentences, join, key, sentence_ends


def feed(agreement: LocalAgreement, *hypotheses: str) -> list[str]:
    """The delta texts emitted for each hypothesis."""
    out = []
    for hypothesis in hypotheses:
        sent = agreement.text
        out.append(join(agreement.insert(hypothesis.split()), after=sent))
    return out


def test_first_hypothesis_commits_nothing_then_the_common_prefix():
    la = LocalAgreement()
    deltas = feed(la, "The patient is a", "The patient is a 52 year", "The patient is a 52 year old man with")
    assert deltas == ["", "The patient is a", " 52 year"]
    assert la.text == "The patient is a 52 year"


def test_committed_text_never_shrinks_or_changes():
    la = LocalAgreement()
    feed(la, "start aspirin and", "start aspirin and order")
    assert la.committed == ["start", "aspirin", "and"]
    # Later hypotheses disagree with a committed word: nothing is retracted; agreement goes on after
    # the last committed word they share ("and").
    assert feed(la, "Start a spring and order a", "Start a spring and order a troponin") == ["", " order a"]
    assert la.committed == ["start", "aspirin", "and", "order", "a"]


def test_comparison_ignores_case_and_punctuation_including_persian():
    assert key("old.") == key("Old") == "old"
    assert key("دارد؟") == key("دارد") and key("«بیمار»") == "بیمار" and key("سینه،") == "سینه"
    la = LocalAgreement()
    # "old." (the audio stopped there) and "old" (it went on) agree; the newest spelling is sent.
    assert feed(la, "a 52 year old.", "a 52 year old man") == ["", "a 52 year old"]


def test_realignment_when_words_are_split_differently():
    la = LocalAgreement()
    feed(la, "The patient is a 52-year-old", "The patient is a 52-year-old man")
    assert la.committed[-1] == "52-year-old"
    # The next hypotheses spell it as three words: the new words after it are still found.
    assert feed(la, "The patient is a 52 year old man with chest", "The patient is a 52 year old man with chest pain") \
        == ["", " man with chest"]
    # And the other way round.
    la = LocalAgreement()
    feed(la, "a 52 year old", "a 52 year old man")
    assert feed(la, "a 52-year-old man with", "a 52-year-old man with pain") == ["", " man with"]


def test_sentence_ends_include_the_persian_question_mark():
    assert ends_sentence("hours.") and ends_sentence("really?") and ends_sentence("دارد؟")
    assert ends_sentence("است۔") and ends_sentence('said."')
    assert not ends_sentence("سینه،") and not ends_sentence("man,")
    assert sentence_ends("آیا درد دارد؟ بله دارد. و".split()) == [3, 5]


def test_freeze_drops_finished_sentences_and_agreement_goes_on_after_them():
    la = LocalAgreement()
    feed(la, "Chest pain. Start", "Chest pain. Start aspirin")
    assert la.committed == ["Chest", "pain.", "Start"]
    assert la.freeze(2) == ["Chest", "pain."]
    assert la.committed == ["Start"]
    # Later hypotheses cover only the audio after the frozen sentence.
    assert feed(la, "Start aspirin now", "Start aspirin now and") == [" aspirin", " now"]
    assert la.committed == ["Start", "aspirin", "now"]


def test_no_common_words_commits_nothing():
    la = LocalAgreement()
    feed(la, "alpha beta", "alpha beta gamma")
    assert feed(la, "xyz", "xyz") == ["", ""]
    assert la.text == "alpha beta"


def test_finished_sentences_are_whole_committed_segments_but_never_the_last():
    segments = [(2.0, " Chest pain since noon."), (4.5, " آیا درد دارد؟"), (6.0, " Start aspirin")]
    words = [w for _, t in segments for w in t.split()]
    assert finished_sentences(words[:4], segments) == (4, 2.0)
    assert finished_sentences(words, segments) == (7, 4.5)  # the Persian question ends a sentence
    assert finished_sentences(words[:6], segments) == (4, 2.0)  # the second segment is not all committed
    assert finished_sentences(words[:3], segments) == (0, 0.0)
    assert finished_sentences(["Other", "words"], segments) == (0, 0.0)  # committed text is not this hypothesis'
    assert finished_sentences(words, [(2.0, " No full stop"), (3.0, " here")]) == (0, 0.0)
