"""s2dm_lightning/models/text_encoder.py: a caption longer than the window is an error, not cut short."""

from __future__ import annotations

import pytest

from s2dm_lightning.models.text_encoder import MiniLMTextEncoder


@pytest.fixture(scope="module")
def encoder() -> MiniLMTextEncoder:
    return MiniLMTextEncoder(max_length=8)


def test_caption_within_the_window_is_encoded(encoder):
    assert encoder.token_count("a red square moves up") == 7  # [CLS] 5 words [SEP]
    hidden, mask = encoder.encode(["a red square moves up"])
    assert hidden.shape == (1, 8, 384) and int(mask.sum()) == 7


def test_longer_caption_names_itself_the_window_and_the_key(encoder):
    long = " ".join(["word"] * 500)
    with pytest.raises(ValueError, match=r"caption 'word word .*\.\.\. \(500 words\)' is 502 tokens, longer than the "
                                         r"text encoder's window of 8 \(model.init_args.text_encoder.init_args.max_length\)"):
        encoder.encode(["a red square", long])
    with pytest.raises(ValueError, match="is 9 tokens"):
        encoder.check_prompts(["one two three four five six seven"])


def test_max_length_beyond_the_positions_is_named():
    with pytest.raises(ValueError, match=r"max_length must be <= 512, got 600"):
        MiniLMTextEncoder(max_length=600)
    with pytest.raises(ValueError, match=r"max_length must be >= 2, got 0"):
        MiniLMTextEncoder(max_length=0)
