"""`LanguageModel`: chat completions (litellm or direct HTTP) with structured output."""

from __future__ import annotations

import asyncio
import copy
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import Any

import pydantic

from synaray.errors import ConfigError, LMError, LMOutputError
from synaray.lm._litellm import NO_SDK_RETRIES, import_litellm
from synaray.lm.base import ModelClient, estimate_tokens
from synaray.lm.cache import cache_key
from synaray.lm.hooks import ObservedCall, has_call_observers, observe_call
from synaray.lm.local.names import LOCAL_TIMEOUT_S
from synaray.lm.parsing import (
    describe_validation_error,
    extract_json,
    repair_messages,
    repeating_tail,
    validate_json,
    with_schema_instructions,
)
from synaray.lm.results import LMResult
from synaray.lm.retry import call_with_retries
from synaray.lm.schema_memo import memo_for
from synaray.lm.token_budget import max_tokens_for_schema
from synaray.lm.transport import ChatReply, check_transport, choose_transport
from synaray.lm.transport.choice import transport_setting
from synaray.lm.transport.reply import reply_from_litellm

__all__ = ["LOOP_STOP_MODES", "STRUCTURED_OUTPUT_MODES", "LanguageModel"]

STRUCTURED_OUTPUT_MODES = ("auto", "json_schema", "json_object", "grammar", "none")
LOOP_STOP_MODES = ("auto", "stream", "after")
#: Under `loop_stop="auto"`, a request to a server on this machine is streamed (and closed
#: when it loops) when it may run to at least this many tokens: a loop is seen after about
#: 50 tokens (`synaray.lm.parsing.STREAM_LOOP_MIN_CHARS`), so a shorter budget saves little.
STREAM_MIN_MAX_TOKENS = 128
_CACHE_VERSION = 1
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Target:
    """Where requests go once a `local/...` name is resolved."""

    model: str
    api_base: str | None
    api_key: str | None


@dataclass
class _Tally:
    """Requests, tokens and cost of one call, across retries and the repair attempt."""

    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class LanguageModel(ModelClient):
    """A chat model reached through litellm or, for OpenAI-compatible servers, a direct HTTP
    client; with retries, a response cache and accounting.

    Args:
        model: a litellm model name ("openai/gpt-4o-mini", "gemini/...", "ollama/...") or
            "local/smollm2-135m" (also "local/smollm2"): the bundled SmolLM2 served by
            llama.cpp on 127.0.0.1, started on first use (needs the `local` extra).
        api_base: the endpoint, when not the provider's default.
        api_key: the key; never written to configs or reprs.
        temperature: sampling temperature (0 = greedy).
        max_tokens: longest answer, in tokens; "auto" (the default) sizes it to the output
            schema of each call (`synaray.lm.token_budget.max_tokens_for_schema`: a few
            dozen tokens for a label, 512 for free text, 512 without a schema); None sends
            no limit.
        timeout: seconds before one request is abandoned (then retried); None means 60,
            or 300 for `local/` models (the local server queues requests one at a time).
        retries: retries after the first attempt, for 429, timeouts and 5xx; other 4xx
            errors are never retried.
        cache: True (the file `$SYNARAY_CACHE_DIR/lm_cache.sqlite`, default
            `~/.cache/synaray/`), False/None (off), or the path of a SQLite file. Only
            successful, validated answers are stored.
        max_concurrency: requests in flight at once for this object, per event loop.
        structured_output: how a schema is enforced: "json_schema" (provider-side
            `response_format`), "json_object" (JSON mode, schema in the system prompt),
            "grammar" (a GBNF grammar for llama.cpp servers, schema in the prompt), "none"
            (schema in the prompt only) or "auto": grammar for local llama.cpp servers,
            json_schema where litellm says the model supports it, else json_object.
        backoff_base_s: first backoff delay in seconds, doubled at each retry.
        backoff_max_s: longest backoff delay in seconds.
        api_key_env: the name of the environment variable holding the key: written to
            configs, read by every process that calls the model (`synaray.lm.keys`).
        transport: how requests are sent: "auto" (a direct HTTP/1.1 client for `openai/...`
            models with an `api_base` and for `local/...` models, litellm for the rest),
            "litellm" (always litellm) or "http" (always the direct client; `openai/...` and
            `local/...` models only). With "auto", the environment variable
            `SYNARAY_LM_TRANSPORT` ("litellm" or "http") decides instead. Both give the same
            answers, retries, errors and usage (see `synaray.lm.transport`).
        loop_stop: how an answer that loops (one piece of text repeated over and over) is
            caught: "stream" (the direct client streams the answer and closes it as soon as
            its tail repeats: the call fails with `LMOutputError` "the answer repeats ..."
            without spending the whole `max_tokens`), "after" (the whole answer is received,
            then checked when it does not validate) or "auto" (the default: "stream" for
            `local/...` models and servers on this machine (a loopback `api_base`: llama.cpp,
            vLLM, Ollama) when `max_tokens` is None or at least `STREAM_MIN_MAX_TOKENS`,
            "after" otherwise: for hosted APIs, which rarely loop, streaming would cost
            about a fifth more client CPU per call). The litellm transport always checks
            after (see docs/architecture.md, "Looping answers").
        **litellm_kwargs: passed to `litellm.acompletion` with every request (e.g. `seed`,
            `top_p`, `mock_response`); OpenAI parameters are sent as they are by the direct
            client, any other keyword makes "auto" use litellm.

    Calls never raise for per-call problems (rate limits, timeouts, 4xx/5xx, unparsable
    output): they return an `LMResult` with `ok=False` and the error kept.

    Example:
        >>> import asyncio, synaray
        >>> lm = synaray.LanguageModel("openai/gpt-4o-mini", mock_response='{"answer": "4"}',
        ...                            cache=False, structured_output="json_object")
        >>> class Answer(synaray.DataModel):
        ...     answer: str
        >>> result = asyncio.run(lm([{"role": "user", "content": "2+2?"}], data_model=Answer))
        >>> result.ok, result.json
        (True, {'answer': '4'})
    """

    transport = "auto"  # class defaults: objects pickled before the arguments existed
    loop_stop = "auto"

    def __init__(self, model: str, api_base: str | None = None, api_key: str | None = None,
                 temperature: float = 0.0, max_tokens: int | str | None = "auto",
                 timeout: float | None = None, retries: int = 4, cache: bool | str | None = True,
                 max_concurrency: int = 8, structured_output: str = "auto",
                 backoff_base_s: float = 1.0, backoff_max_s: float = 30.0,
                 api_key_env: str | None = None, transport: str = "auto",
                 loop_stop: str = "auto", **litellm_kwargs: Any) -> None:
        if timeout is None:
            timeout = LOCAL_TIMEOUT_S if str(model).startswith("local/") else DEFAULT_TIMEOUT_S
        super().__init__(model, api_base=api_base, api_key=api_key, api_key_env=api_key_env,
                         timeout=timeout, retries=retries, cache=cache,
                         max_concurrency=max_concurrency, backoff_base_s=backoff_base_s,
                         backoff_max_s=backoff_max_s, **litellm_kwargs)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or temperature < 0:
            raise ConfigError(f"Invalid value for argument `temperature`. Received: "
                              f"{temperature!r}. Expected a number >= 0.")
        if max_tokens != "auto" and (isinstance(max_tokens, bool) or not (
                max_tokens is None or (isinstance(max_tokens, int) and max_tokens > 0))):
            raise ConfigError(f"Invalid value for argument `max_tokens`. Received: "
                              f"{max_tokens!r}. Expected a positive integer, 'auto' or None.")
        if structured_output not in STRUCTURED_OUTPUT_MODES:
            raise ConfigError(f"Invalid value for argument `structured_output`. Received: "
                              f"{structured_output!r}. Expected one of {STRUCTURED_OUTPUT_MODES}.")
        if model.startswith("local/"):
            from synaray.lm.local.names import check_local_language_model

            check_local_language_model(model)
        check_transport(transport, "argument `transport`")
        _check_loop_stop(loop_stop, "argument `loop_stop`")
        if transport == "http" and not model.startswith(("openai/", "local/")):
            raise ConfigError(f"Invalid value for argument `transport`. Received: 'http' for "
                              f"model {model!r}. Expected an 'openai/...' or 'local/...' model "
                              "(the direct client speaks the OpenAI API), or 'auto'/'litellm'.")
        self.transport = transport
        self.loop_stop = loop_stop
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.structured_output = structured_output

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._target: _Target | None = None
        self._auto_mode: str | None = None

    def _runtime_fields(self) -> set[str]:
        return {"_target", "_auto_mode"}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(temperature=self.temperature, max_tokens=self.max_tokens,
                      structured_output=self.structured_output)
        if self.transport != "auto":  # saved configs of the default stay as they were
            config["transport"] = self.transport
        if self.loop_stop != "auto":
            config["loop_stop"] = self.loop_stop
        return config

    # -- the call --------------------------------------------------------------------
    async def __call__(self, messages: list[dict[str, Any]], schema: dict | None = None,
                       data_model: type | None = None, **overrides: Any) -> LMResult:
        """Send `messages` and return the answer (validated JSON when a schema is given).

        Args:
            messages: chat messages, each a dict with "role" and "content".
            schema: a JSON schema (object) the answer must follow.
            data_model: a `synaray.DataModel` class the answer must validate into (wins
                over `schema`).
            **overrides: litellm arguments for this call only (`temperature`, `max_tokens`,
                `structured_output`, ...).

        Returns:
            An `LMResult`; `ok=False` (with `error` and `error_type`) when the call failed.

        Raises:
            ConfigError: bad arguments (not per-call failures).
            MissingExtraError: a `local/...` model without the `local` extra.
        """
        if not has_call_observers():
            return await self._call(messages, schema, data_model, overrides)
        title = schema.get("title") if isinstance(schema, dict) else None
        call = ObservedCall(model=self.model, messages=messages if isinstance(messages, list)
                            else [], schema_title=getattr(data_model, "__name__", title))
        with observe_call(call):
            call.result = await self._call(messages, schema, data_model, overrides)
        return call.result

    generate = __call__

    async def _call(self, messages: list[dict[str, Any]], schema: dict | None,
                    data_model: type | None, overrides: dict[str, Any]) -> LMResult:
        start = time.perf_counter()
        messages = _check_messages(messages)
        data_model, schema = _output_model(schema, data_model)
        mode = overrides.pop("structured_output", None)
        loop_stop = _check_loop_stop(overrides.pop("loop_stop", self.loop_stop), "`loop_stop`")
        target = await self._resolve_target()
        if schema is not None:
            mode = mode or self._mode_for(target)
        request = self._request(target, messages, schema, mode, overrides)
        cache = self.response_cache
        key = cache_key(self._key_payload(request, schema)) if cache is not None else None
        hit = await cache.aget(key) if cache is not None and key is not None else None
        if hit is not None:
            result = LMResult(ok=True, json=hit.get("json"), text=hit.get("text"),
                              cached=True, model=self.model)
        else:
            result = await self._complete(request, data_model, loop_stop)
            if result.ok and cache is not None and key is not None:
                await cache.aset(key, {"json": result.json, "text": result.text})
        result.latency_s = time.perf_counter() - start
        self._account(ok=result.ok, cached=result.cached, requests=result.attempts,
                      prompt_tokens=result.prompt_tokens,
                      completion_tokens=result.completion_tokens, cost=result.cost,
                      latency_s=result.latency_s, error=result.error,
                      error_type=result.error_type)
        return result

    async def _complete(self, request: dict[str, Any],
                        data_model: type[pydantic.BaseModel] | None,
                        loop_stop: str = "auto") -> LMResult:
        """Send the request (and one repair if needed); failures become `ok=False`.

        An answer closed early because it looped (`loop_stop`) fails at once, as a finished
        answer that loops does: a repair would loop again.
        """
        tally = _Tally()
        text: str | None = None
        try:
            reply = await self._send(request, tally, loop_stop)
            text = reply.text
            self._raise_if_stopped(reply, data_model, "")
            if data_model is None:
                return self._result(tally, ok=True, text=text)
            try:
                return self._result(tally, ok=True, text=text,
                                    json=validate_json(extract_json(text), data_model))
            except (ValueError, pydantic.ValidationError) as exc:
                problem = describe_validation_error(exc)
            self._raise_if_looping(text, data_model, "")  # a repair would loop again
            repair = {**request,
                      "messages": repair_messages(request["messages"], text, problem)}
            reply = await self._send(repair, tally, loop_stop)
            text = reply.text
            self._raise_if_stopped(reply, data_model, " after one repair attempt")
            try:
                data = validate_json(extract_json(text), data_model)
            except (ValueError, pydantic.ValidationError) as exc:
                self._raise_if_looping(text, data_model, " after one repair attempt")
                raise LMOutputError(
                    f"{self.model}: the answer does not fit {data_model.__name__} after one "
                    f"repair attempt: {describe_validation_error(exc)}") from exc
            return self._result(tally, ok=True, text=text, json=data)
        except LMError as exc:
            return self._result(tally, ok=False, text=text, error=str(exc),
                                error_type=type(exc).__name__)

    def _raise_if_looping(self, text: str | None, data_model: type, when: str) -> None:
        unit = repeating_tail(text)
        if unit is not None:
            raise LMOutputError(f"{self.model}: the answer does not fit {data_model.__name__}"
                                f"{when}: the answer repeats {unit[:80]!r} (a looping answer "
                                f"of {len(text or '')} characters)")

    def _raise_if_stopped(self, reply: ChatReply, data_model: type | None, when: str) -> None:
        if reply.loop_unit is None:
            return
        fits = (f" the answer does not fit {data_model.__name__}{when}:"
                if data_model is not None else "")
        tokens = (f"about {reply.completion_tokens} tokens (estimated: the stream was closed "
                  "before the server's usage)" if reply.usage_estimated
                  else f"{reply.completion_tokens} tokens")
        raise LMOutputError(f"{self.model}:{fits} the answer repeats "
                            f"{reply.loop_unit[:80]!r} (generation stopped early after "
                            f"{len(reply.text or '')} characters, {tokens})")

    def _result(self, tally: _Tally, **fields: Any) -> LMResult:
        return LMResult(prompt_tokens=tally.prompt_tokens,
                        completion_tokens=tally.completion_tokens, cost=tally.cost,
                        attempts=tally.attempts, model=self.model, **fields)

    async def _send(self, request: dict[str, Any], tally: _Tally,
                    loop_stop: str = "auto") -> ChatReply:
        """One logical request: retried on 429/timeout/5xx; returns the answer."""
        tokens = estimate_tokens([str(m.get("content") or "") for m in request["messages"]],
                                 request.get("max_tokens") or 0)
        if choose_transport(transport_setting(self.transport), request) == "http":
            from synaray.lm.transport import openai_stream

            stream = _streams(loop_stop, request)

            def send() -> Any:
                return openai_stream.send_chat(request, self.model, stream)

            def read(reply: Any) -> ChatReply:
                return reply
        else:
            litellm = import_litellm()

            def send() -> Any:
                return litellm.acompletion(**request)

            def read(response: Any) -> ChatReply:
                return reply_from_litellm(litellm, response, self.model)

        async def attempt() -> Any:
            tally.attempts += 1
            return await self._attempt(send, tokens)

        reply = read(await call_with_retries(attempt, self.retry_policy))
        tally.prompt_tokens += reply.prompt_tokens
        tally.completion_tokens += reply.completion_tokens
        tally.cost += reply.cost
        return reply

    # -- building requests -----------------------------------------------------------
    async def _resolve_target(self) -> _Target:
        if self._target is None:
            if self.model.startswith("local/"):
                from synaray.lm.local.server import resolve_local_language_model

                model, api_base = await asyncio.to_thread(resolve_local_language_model,
                                                          self.model)
                self._target = _Target(model, self.api_base or api_base,
                                       self._api_key() or "sk-local")
            else:
                # An explicit key (api_key, api_key_env, a key shipped by the driver) always
                # wins; without one, a loopback server (llama.cpp, vLLM on this machine)
                # takes any key.
                key = self._api_key() or ("sk-local" if _is_loopback(self.api_base)
                                          and not self.api_key_env else None)
                self._target = _Target(self.model, self.api_base, key)
        return self._target

    def _mode_for(self, target: _Target) -> str:
        if self.structured_output != "auto":
            return self.structured_output
        if self._auto_mode is None:
            self._auto_mode = _auto_mode(self.model, target)
        return self._auto_mode

    def _request(self, target: _Target, messages: list[dict], schema: dict | None,
                 mode: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"temperature": self.temperature,
                                   "max_tokens": self.max_tokens, **self.litellm_kwargs,
                                   **overrides}
        if request.get("max_tokens") == "auto":
            request["max_tokens"] = (memo_for(schema).max_tokens if schema is not None
                                     else max_tokens_for_schema(None))
        if request.get("max_tokens") is None:
            request.pop("max_tokens")
        request.update(model=target.model, timeout=self.timeout, num_retries=0,
                       max_retries=NO_SDK_RETRIES)
        if target.api_base:
            request["api_base"] = target.api_base
        if target.api_key:
            request["api_key"] = target.api_key
        if schema is not None:
            if mode not in STRUCTURED_OUTPUT_MODES or mode == "auto":
                raise ConfigError(f"Invalid value for argument `structured_output`. Received: "
                                  f"{mode!r}. Expected one of {STRUCTURED_OUTPUT_MODES[1:]}.")
            if mode == "json_schema":  # a copy: litellm may edit the schema it is given
                request["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": _schema_name(schema), "schema": copy.deepcopy(schema)}}
            else:
                messages = with_schema_instructions(messages, schema, memo_for(schema).prompt)
            if mode == "json_object":
                request["response_format"] = {"type": "json_object"}
            elif mode == "grammar":
                request["extra_body"] = {**(request.get("extra_body") or {}),
                                         "grammar": memo_for(schema).grammar}
        request["messages"] = messages
        return request

    def _key_payload(self, request: dict[str, Any], schema: dict | None) -> dict[str, Any]:
        """What decides the answer: the configured model and endpoint, not a local port."""
        return {"v": _CACHE_VERSION, "kind": "chat", "model": self.model,
                "api_base": self.api_base, "schema": schema,
                "request": self._semantic_kwargs(request)}

    def __repr__(self) -> str:
        base = f" api_base={self.api_base}" if self.api_base else ""
        mode = ("" if self.structured_output == "auto"
                else f" structured_output={self.structured_output}")
        return f"<LanguageModel model={self.model}{base}{mode}>"


def _check_loop_stop(value: Any, name: str) -> str:
    if value not in LOOP_STOP_MODES:
        raise ConfigError(f"Invalid value for {name}. Received: {value!r}. "
                          f"Expected one of {LOOP_STOP_MODES}.")
    return value


def _streams(loop_stop: str, request: dict[str, Any]) -> bool:
    """Whether a direct-client request is streamed with the loop check (`loop_stop`)."""
    if loop_stop != "auto":
        return loop_stop == "stream"
    if not _is_loopback(request.get("api_base")):
        return False
    budget = request.get("max_tokens", request.get("max_completion_tokens"))
    return budget is None or budget >= STREAM_MIN_MAX_TOKENS


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list | tuple) or not messages:
        raise ConfigError(f"Invalid value for argument `messages`. Received: "
                          f"{type(messages).__name__}. Expected a non-empty list of "
                          "{'role': ..., 'content': ...} dicts.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ConfigError(f"Invalid value for argument `messages`: item {i} is "
                              f"{message!r}. Expected a dict with 'role' and 'content'.")
    return list(messages)


def _output_model(schema: Any, data_model: Any) -> tuple[type | None, dict | None]:
    if data_model is not None:
        if not (isinstance(data_model, type) and issubclass(data_model, pydantic.BaseModel)):
            raise ConfigError(f"Invalid value for argument `data_model`. Received: "
                              f"{data_model!r}. Expected a synaray.DataModel class.")
        return data_model, _json_schema(data_model)
    if schema is None:
        return None, None
    if not isinstance(schema, dict):
        raise ConfigError(f"Invalid value for argument `schema`. Received: "
                          f"{type(schema).__name__}. Expected a JSON schema dict.")
    return memo_for(schema).data_model, schema


_SCHEMAS: weakref.WeakKeyDictionary[type, dict] = weakref.WeakKeyDictionary()


def _json_schema(data_model: type[pydantic.BaseModel]) -> dict:
    """`data_model.model_json_schema()`, computed once per class (about 1 ms each time).

    The dict is shared by every call with that class and only read (request building,
    grammar, cache key); the one place that hands it to foreign code (litellm's
    `response_format`) passes a copy.
    """
    schema = _SCHEMAS.get(data_model)
    if schema is None:
        schema = data_model.model_json_schema()
        _SCHEMAS[data_model] = schema
    return schema


def _auto_mode(configured_model: str, target: _Target) -> str:
    if configured_model.startswith("local/"):
        return "grammar"
    if target.model.startswith("openai/") and _is_loopback(target.api_base):
        return "grammar"
    litellm = import_litellm()
    try:
        if litellm.supports_response_schema(model=target.model):
            return "json_schema"
    except Exception:  # litellm raises for models it does not know
        pass
    return "json_object"


def _schema_name(schema: dict) -> str:
    title = str(schema.get("title") or "output")
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in title)[:64]




def _is_loopback(api_base: str | None) -> bool:
    host = urllib.parse.urlparse(api_base).hostname if api_base else None
    return host in ("localhost", "::1", "0.0.0.0") or bool(host and host.startswith("127."))
