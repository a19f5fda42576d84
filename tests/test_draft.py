from __future__ import annotations

import pytest

from rag.answering.draft import DraftSentence, ReplyParser, marker_numbers, parse_reply


@pytest.mark.parametrize(
    ("marker", "numbers"),
    [
        ("[2]", [2]),
        ("[1, 3]", [1, 3]),
        ("[1,3]", [1, 3]),
        ("[1-3]", [1, 2, 3]),
        ("[1–2]", [1, 2]),
        ("[Source 2]", [2]),
        ("[2 and 4]", [2, 4]),
    ],
)
def test_marker_numbers_expand_lists_ranges_and_source_prefix(marker: str, numbers: list[int]):
    assert marker_numbers(marker) == numbers


def test_each_sentence_keeps_its_own_markers_without_the_marker_text():
    sentences = parse_reply("SOUL unlearns data [2]. It beats baselines [1][3].")
    assert sentences == [
        DraftSentence("SOUL unlearns data.", (2,), ""),
        DraftSentence("It beats baselines.", (1, 3), " "),
    ]


def test_markers_after_a_full_stop_belong_to_the_sentence_before():
    sentences = parse_reply("SOUL unlearns data. [2] DEFT prunes activations [1].")
    assert [(s.text, s.cited) for s in sentences] == [
        ("SOUL unlearns data.", (2,)),
        ("DEFT prunes activations.", (1,)),
    ]


def test_a_reply_that_opens_with_a_marker_owns_its_leading_markers():
    sentences = parse_reply("[2] SOUL unlearns data. [1] DEFT prunes activations.")
    assert [(s.text, s.cited) for s in sentences] == [
        ("SOUL unlearns data.", (2,)),
        ("DEFT prunes activations.", (1,)),
    ]


def test_list_items_keep_their_bullets_and_line_markers():
    sentences = parse_reply("Two papers:\n- [1] Trans-LoRA moves adapters.\n2. DEFT prunes [2].")
    assert [(s.lead, s.text, s.cited) for s in sentences] == [
        ("", "Two papers:", ()),
        ("\n- ", "Trans-LoRA moves adapters.", (1,)),
        ("\n2. ", "DEFT prunes.", (2,)),
    ]


def test_a_stray_marker_line_cites_the_sentence_before_it():
    sentences = parse_reply("SOUL unlearns data.\n[3]")
    assert sentences == [DraftSentence("SOUL unlearns data.", (3,), "")]


def test_grouped_and_repeated_markers_are_listed_once_in_order():
    [sentence] = parse_reply("Both lower memory [2, 1][2][1-3].")
    assert sentence.cited == (2, 1, 3)


def test_brackets_that_are_not_markers_stay_in_the_text():
    [sentence] = parse_reply("Scores lie in [0.2, 0.9] for all runs [1].")
    assert sentence.text == "Scores lie in [0.2, 0.9] for all runs."
    assert sentence.cited == (1,)


REPLY = (
    "[1] SOUL uses second-order optimization for unlearning. It beats first-order methods "
    "[1, 2]. DEFT lowers activation density. [3]\n- Another item [2]."
)


@pytest.mark.parametrize("size", [1, 3, 7])
def test_streamed_deltas_give_the_same_sentences_as_the_whole_reply(size: int):
    parser = ReplyParser()
    streamed = []
    for start in range(0, len(REPLY), size):
        streamed += parser.feed(REPLY[start : start + size])
    streamed += parser.finish()
    assert streamed == parse_reply(REPLY)


def test_a_sentence_is_released_only_once_the_next_one_has_begun():
    parser = ReplyParser()
    assert parser.feed("SOUL unlearns data. [") == []
    assert parser.feed("2] ") == []  # its marker might still be followed by more markers
    assert parser.feed("DEFT") == [DraftSentence("SOUL unlearns data.", (2,), "")]
    assert parser.finish() == [DraftSentence("DEFT", (), " ")]
