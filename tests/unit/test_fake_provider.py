from collections.abc import Iterator

import pytest

from promptlab.core.settings import get_settings
from promptlab.core.tokens import count_tokens
from promptlab.providers.base import GenerationCall, Message, ProviderError
from promptlab.providers.fake import FakeProvider


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def call(prompt: str, max_tokens: int = 1000) -> GenerationCall:
    return GenerationCall(
        model="fake-1",
        system="Be brief.",
        messages=[Message(role="user", content=prompt)],
        max_tokens=max_tokens,
        temperature=None,
        timeout_seconds=5,
    )


def test_same_input_same_output_and_different_input_different_output() -> None:
    provider = FakeProvider()
    assert provider.generate(call("Explain SQS")).text == provider.generate(call("Explain SQS")).text
    assert provider.generate(call("Explain SQS")).text != provider.generate(call("Explain SNS")).text


def test_tokens_are_counted_from_the_text() -> None:
    result = FakeProvider().generate(call("Explain SQS"))
    assert result.usage.output_tokens == count_tokens(result.text) > 10
    assert result.usage.input_tokens >= count_tokens("Be brief.") + count_tokens("Explain SQS")
    assert count_tokens("internationalization, done.") == 8  # 5 + 1 + 1 + 1


def test_max_tokens_truncates_and_says_so() -> None:
    result = FakeProvider().generate(call("Explain SQS", max_tokens=5))
    assert result.truncated and result.finish_reason == "max_tokens"
    assert result.usage.output_tokens <= 5


def test_it_fails_when_told_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_FAKE_FAIL_STATUS", "529")
    with pytest.raises(ProviderError) as exc:
        FakeProvider().generate(call("x"))
    assert exc.value.code == "overloaded" and exc.value.retryable and exc.value.status == 529
