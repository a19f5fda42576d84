"""Bounds on one request: question length, k, message count; and the settings that set them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paperchat.errors import LimitExceeded
from paperchat.limits import check_k, check_messages, check_question
from paperchat.settings import Settings


def test_question_within_the_limit_is_returned_stripped(settings: Settings) -> None:
    assert check_question("  What is SOUL?  ", settings) == "What is SOUL?"


def test_question_over_the_limit_names_the_setting(settings: Settings) -> None:
    small = settings.model_copy(update={"max_question_chars": 10})

    with pytest.raises(LimitExceeded, match="PAPERCHAT_MAX_QUESTION_CHARS"):
        check_question("x" * 11, small)


@pytest.mark.parametrize("k", [0, -1, 51, 10**6, 2.5])
def test_k_outside_one_to_max_k_is_refused(settings: Settings, k: float) -> None:
    with pytest.raises(LimitExceeded, match="PAPERCHAT_MAX_K"):
        check_k(k, settings)


def test_k_within_bounds_or_unset_passes(settings: Settings) -> None:
    assert check_k(None, settings) is None
    assert check_k(50, settings) == 50
    assert check_k(3.0, settings) == 3


def test_too_many_messages_are_refused(settings: Settings) -> None:
    check_messages(50, settings)
    with pytest.raises(LimitExceeded, match="PAPERCHAT_MAX_MESSAGES"):
        check_messages(51, settings)


def test_top_k_above_max_k_is_a_settings_error(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="max_k"):
        Settings(_env_file=None, top_k=20, max_k=10)
