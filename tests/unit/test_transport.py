"""Reading an answer whole within a size cap, whatever transport answered it."""

import httpx
import pytest

from notte_exporter.api.transport import AnswerTooLarge, read_body


def answered_from_memory(content: bytes) -> httpx.Response:
    """A response as a MockTransport (the benchmarks') gives it: read already."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=content))
    with httpx.Client(transport=transport) as client:
        return client.send(client.build_request("GET", "http://api.test/"), stream=True)


def test_an_answer_already_in_memory_is_returned_whole() -> None:
    assert read_body(answered_from_memory(b'{"items": []}'), limit=100) == b'{"items": []}'


def test_an_answer_already_in_memory_is_held_to_the_cap_too() -> None:
    with pytest.raises(AnswerTooLarge):
        read_body(answered_from_memory(b"x" * 101), limit=100)
