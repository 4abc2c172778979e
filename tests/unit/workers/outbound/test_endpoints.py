"""WEBHOOK_ENDPOINTS: a readable JSON list; every mistake is one line naming the entry, never a secret."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr, ValidationError

from receiver.kernel.webhook_endpoints import EVENT_TYPES, parse
from tests.support.webhook_sink import new_secret
from workers.settings import WorkerSettings

SECRET = new_secret(5)


def test_an_endpoint_takes_every_event_unless_it_names_some() -> None:
    found = parse(json.dumps([
        {"name": "crm", "url": "https://crm.example/hooks", "secret": SECRET},
        {"name": "audit", "url": "https://audit.example", "secrets": [SECRET, new_secret(6)], "events": ["recording.deleted"]},
    ]))
    assert [e.name for e in found] == ["crm", "audit"]
    assert found[0].events == frozenset(EVENT_TYPES) and found[1].events == {"recording.deleted"}
    assert len(found[1].secrets) == 2
    assert SECRET.removeprefix("whsec_") not in repr(found) and "secrets" not in repr(found)


@pytest.mark.parametrize(("entry", "said"), [
    ("not json", "must be a JSON list"),
    ({"name": "x"}, "must be a JSON list"),
    ([{"name": "Bad Name", "url": "https://x", "secret": SECRET}], "name must be"),
    ([{"name": "x", "url": "ftp://x", "secret": SECRET}], "url must be"),
    ([{"name": "x", "url": "https://x", "secret": SECRET.removeprefix("whsec_")}], "must start with whsec_"),
    ([{"name": "x", "url": "https://x", "secret": "whsec_!!!"}], "not base64"),
    ([{"name": "x", "url": "https://x", "secret": "whsec_c2hvcnQ="}], "24 to 64 bytes"),
    ([{"name": "x", "url": "https://x", "secret": SECRET, "events": ["recording.done"]}], "unknown event"),
    ([{"name": "x", "url": "https://x", "secret": SECRET, "header": "y"}], "unknown key"),
    ([{"name": "x", "url": "https://x", "secret": SECRET}, {"name": "x", "url": "https://y", "secret": SECRET}], "same name"),
])
def test_a_mistake_is_one_line_without_the_secret(entry: object, said: str) -> None:
    text = entry if isinstance(entry, str) else json.dumps(entry)
    with pytest.raises(ValueError, match=said) as caught:
        parse(text)
    assert "\n" not in str(caught.value) and SECRET.removeprefix("whsec_") not in str(caught.value)
    with pytest.raises(ValidationError) as refused:
        WorkerSettings(webhook_endpoints=SecretStr(text))
    assert "webhook_endpoints" in str(refused.value) and SECRET.removeprefix("whsec_") not in str(refused.value)


def test_the_setting_never_shows_its_secrets() -> None:
    settings = WorkerSettings(webhook_endpoints=SecretStr(json.dumps([{"name": "x", "url": "https://x.example", "secret": SECRET}])))
    assert SECRET.removeprefix("whsec_") not in repr(settings) and SECRET.removeprefix("whsec_") not in str(settings.model_dump())
    assert [e.name for e in settings.webhook_endpoint_list] == ["x"]
