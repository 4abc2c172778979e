"""The callback endpoint: read, verify, parse, dedupe-and-enqueue, answer — in that order."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from receiver.app.asgi_io import BodyTimeout, BodyTooLarge, ClientGone, Incoming, Receive, Scope, Send, read_body, reply
from receiver.app.body_deadline import BodyDeadlines
from receiver.app.counters import Counters
from receiver.app.delivery import SPOOLED, Delivery, SpoolUnavailable
from receiver.app.form import Params, parse_params
from receiver.app.settings import ReceiverSettings
from receiver.app.signature import MISMATCH, SETTINGS_HEADER, SIGNATURE_HEADER, algorithm_of, candidate_secrets, verify
from receiver.app.signature_diagnosis import Doctor
from receiver.app.signed_url import RequestLine, redact, signed_url
from receiver.app.sources import Ignored, Parser
from receiver.kernel import logs
from receiver.kernel.accounts import AccountBook
from receiver.kernel.errors import BadCallback, TooManyFields
from receiver.kernel.events import RecordingEvent, Source

log = logs.get("receiver.app.callbacks")

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


@dataclass
class Deps:
    """What every callback endpoint shares; built once in the app's lifespan."""

    settings: ReceiverSettings
    accounts: AccountBook
    delivery: Delivery
    counters: Counters
    deadlines: BodyDeadlines
    doctor: Doctor


@dataclass(slots=True)
class Answer:
    status: int
    reason: str = ""
    close: bool = False


NO_CONTENT = Answer(204)


def _request_line(incoming: Incoming) -> RequestLine:
    return RequestLine(
        scheme=incoming.scheme,
        host=incoming.headers.get("host"),
        raw_path=incoming.raw_path,
        query_string=incoming.query_string,
        forwarded_proto=incoming.headers.get("x-forwarded-proto"),
        forwarded_host=incoming.headers.get("x-forwarded-host"),
    )


def _json_params(body: bytes) -> Params:
    """A JSON callback (signed with bodySHA256) as flat params for the source parser."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadCallback("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadCallback("JSON body is not an object")
    params = Params()
    for name, value in data.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            params[str(name)] = [str(value)]
    return params


class CallbackEndpoint:
    """One per source: an ASGI app mounted as that source's route (Starlette checks the method)."""

    def __init__(self, source: Source, parser: Parser, deps: Deps) -> None:
        self.source = source
        self.parser = parser
        self.deps = deps
        # Asked once: a disabled debug call still cost ~2 µs per callback in its arguments and
        # structlog's lazy proxy (measured), and the level is fixed when the app is built.
        self._debug = log.is_enabled_for(logging.DEBUG)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = Incoming.from_scope(scope)
        try:
            checked = await self._handle(incoming, receive)
        except BodyTooLarge:
            checked = await self._reject(413, "body too large", "rejected_input")
        except TooManyFields:
            checked = await self._reject(413, f"more than {self.deps.settings.max_form_fields} fields", "rejected_input")
        except BodyTimeout:
            checked = await self._body_timeout()
        except ClientGone:
            await self._client_gone()
            return
        # Enqueued from here rather than from inside _handle: the request then waits on Redis
        # two coroutine frames deep instead of five, and each frame is paid again on wake-up.
        answer = checked if isinstance(checked, Answer) else await self._enqueue(checked[0], checked[1])
        await reply(send, answer.status, answer.reason, answer.close)

    async def _body_timeout(self) -> Answer:
        seconds = self.deps.deadlines.timeout
        answer = await self._reject(408, f"body not received within {seconds:g} s", "rejected_input")
        # Closed: the rest of that body may still come, and would be read as the next request.
        return Answer(answer.status, answer.reason, close=True)

    async def _client_gone(self) -> None:
        """Nobody to answer, and no signature to blame: counted apart from forgeries."""
        log.info("callback abandoned", source=self.source.value, reason="client disconnected before the whole body")
        await self.deps.counters.count(self.source.value, "client_disconnected")

    async def _reject(
        self, status: int, reason: str, verdict: str, signature_reason: str | None = None, **context: str
    ) -> Answer:
        """Every refusal: one log line with the reason, one counter, a short answer."""
        log.warning("callback rejected", source=self.source.value, status=status, reason=signature_reason or reason, **context)
        await self.deps.counters.count(self.source.value, verdict, signature_reason)
        return Answer(status, reason)

    async def _read(self, incoming: Incoming, receive: Receive) -> tuple[Params | str, Params, int] | Answer:
        """The params as signed (form params, or the raw JSON text), as parsed, and the body's size."""
        settings = self.deps.settings
        if incoming.method in ("GET", "HEAD"):
            return Params(), parse_params(incoming.query_string, settings.max_form_fields), 0
        ctype = incoming.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (_FORM, _JSON):
            return await self._reject(415, f"unsupported content type {ctype[:60]!r}", "rejected_input")
        body = await read_body(receive, incoming.headers.get("content-length"), settings.max_body_bytes)
        if ctype == _JSON:
            try:
                text, params = body.decode("utf-8"), _json_params(body)
            except UnicodeDecodeError:
                return await self._reject(403, "forbidden", "rejected_signature", "body is not UTF-8")
            if len(params) > settings.max_form_fields:
                raise TooManyFields()
            return text, params, len(body)
        # Bounded: every field costs parsing, then sorting and hashing once per secret and variant.
        params = parse_params(body, settings.max_form_fields)
        return params, params, len(body)

    async def _handle(self, incoming: Incoming, receive: Receive) -> Answer | tuple[RecordingEvent, str | None]:
        """An answer, or a verified event to enqueue and the secret it was signed with."""
        try:
            read = await self._read(incoming, receive)
        except BadCallback as exc:
            # Undecodable bodies cannot carry a valid signature; say so without trusting them.
            return await self._reject(403, "forbidden", "rejected_signature", exc.reason)
        if isinstance(read, Answer):
            return read
        signed_params, params, body_bytes = read
        settings = self.deps.settings
        line = _request_line(incoming)
        url = signed_url(line, settings.public_base_url, settings.trust_proxy_headers)
        tokens = self.deps.accounts.tokens_for(params.first("AccountSid"))
        signature = incoming.headers.get(SIGNATURE_HEADER)
        settings_header = incoming.headers.get(SETTINGS_HEADER)
        verdict = verify(url, signed_params, signature, settings_header, tokens, settings.twilio_webhook_shared_keys)
        if not verdict.ok:
            likely = ""
            if verdict.reason == MISMATCH and signature:
                secrets = candidate_secrets(settings_header, tokens, settings.twilio_webhook_shared_keys)
                algorithm = algorithm_of(settings_header)
                likely = self.deps.doctor.explain(url, line, signed_params, body_bytes, signature, algorithm, secrets)
            return await self._reject(
                403, "forbidden", "rejected_signature", verdict.reason, url=redact(url), likely_difference=likely
            )
        try:
            parsed = self.parser(params)
        except BadCallback as exc:
            return await self._reject(400, exc.reason, "rejected_input")
        if isinstance(parsed, Ignored):
            log.info("callback ignored", source=self.source.value, sid=parsed.sid, reason=parsed.reason)
            await self.deps.counters.count(self.source.value, "ignored")
            return NO_CONTENT
        return parsed, verdict.matched

    async def _enqueue(self, event: RecordingEvent, matched: str | None) -> Answer:
        try:
            result = await self.deps.delivery.deliver(event)
        except SpoolUnavailable:
            return Answer(503, "temporarily unavailable")
        # DEBUG, not INFO: at thousands of callbacks a second a line each is its own outage; every
        # callback is on the recording's timeline and in the counters, and refusals stay WARNING.
        if self._debug:
            log.debug(
                "callback accepted",
                source=event.source.value,
                sid=event.sid,
                status=event.status.value,
                outcome=result.outcome,
                job_id=result.job_id,
                token=matched,
            )
        if result.outcome == SPOOLED:
            return Answer(self.deps.settings.outage_response)
        return NO_CONTENT
