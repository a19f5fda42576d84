from __future__ import annotations

import pytest

from rag.answering.condense import (
    accept_rewrite,
    clean_rewrite,
    condense_prompt,
    fallback_rewrite,
    is_follow_up,
    messages_of,
    needs_rewrite,
)


@pytest.mark.parametrize(
    "question",
    [
        "and which of those uses LoRA?",
        "What about RoBERTa?",
        "How fast is it?",
        "Do they release code?",
        "Why?",
    ],
)
def test_questions_that_refer_back_are_follow_ups(question: str):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question", ["What is the SOUL unlearning framework?", "Which papers prune sparse networks?"]
)
def test_self_contained_questions_are_not_follow_ups(question: str):
    assert not is_follow_up(question)


def test_history_pairs_and_role_messages_normalise_to_the_same_messages():
    pairs = [("What is SOUL?", "An unlearning method [1].")]
    roles = [
        {"role": "user", "content": "What is SOUL?"},
        {"role": "assistant", "content": "An unlearning method [1]."},
        {"role": "system", "content": "ignored"},
    ]
    expected = [("user", "What is SOUL?"), ("assistant", "An unlearning method [1].")]
    assert messages_of(pairs) == expected
    assert messages_of(roles) == expected


def test_no_history_means_no_rewrite():
    assert not needs_rewrite("and which of those uses LoRA?", None)
    assert needs_rewrite("and which of those uses LoRA?", [("What is DEFT?", "")])


def test_fallback_appends_the_previous_questions_missing_key_words():
    messages = [("user", "Which papers reduce activation density?"), ("assistant", "DEFT [1].")]
    rewritten = fallback_rewrite("and which of those uses LoRA?", messages)
    assert rewritten == "and which of those uses LoRA? (context: reduce activation density)"


def test_condense_prompt_shows_recent_turns_and_the_last_question():
    messages = [("user", "What is SOUL?"), ("assistant", "x " * 400)]
    prompt = condense_prompt("How fast is it?", messages)
    assert "User: What is SOUL?" in prompt
    assert "Last question: How fast is it?" in prompt
    assert len(prompt) < 900  # long answers are cut


def test_model_rewrite_is_cleaned_and_empty_replies_fall_back():
    assert clean_rewrite('Standalone question: "How fast is SOUL?"\nextra') == "How fast is SOUL?"
    messages = [("user", "What is SOUL?")]
    assert accept_rewrite("How fast is it?", "  \n", messages) == (
        "How fast is it? (context: SOUL)"
    )
    assert accept_rewrite("How fast is it?", "How fast is SOUL?", messages) == "How fast is SOUL?"
