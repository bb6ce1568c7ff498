"""`preflight`: one cheap request per model before a run spends anything.

A run (`program.fit`, `synaray fit / resume / sweep / evaluate`) first sends each model it
will call one request of one token (an embedding model: one short text), all at once, no
retries, a short timeout. It stops with `synaray.errors.PreflightError` (nothing written,
non-zero exit) when a model cannot work:

- an unknown provider or model name (`nosuchprovider/xyz`),
- an endpoint that refuses the connection or does not answer in time,
- a rejected key (401/403) or a missing model (404), any other 4xx but 429,
- an `api_key_env` that names a variable this process does not have.

A 429 or a 5xx means the endpoint is there and knows the key: the check passes (the run's
retries and circuit breaker handle the rest). The bundled `local/...` models are checked
by the server synaray starts for them, not here. Turn the check off with `--no-preflight`,
`training.preflight: false`, `program.fit(..., preflight=False)` or the environment
variable `SYNARAY_PREFLIGHT=0` (for endpoints that charge per call).

Example:
    >>> import asyncio, synaray
    >>> lm = synaray.LanguageModel("openai/x", mock_response="ok", cache=False)
    >>> asyncio.run(preflight([lm]))
    1
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Any

from synaray.errors import LMError, LMInputError, LMServerError, LMTimeout, PreflightError

__all__ = ["DEFAULT_TIMEOUT_S", "models_in_payloads", "preflight", "preflight_enabled"]

DEFAULT_TIMEOUT_S = 20.0
ENV_PREFLIGHT = "SYNARAY_PREFLIGHT"


def preflight_enabled(value: bool | None) -> bool:
    """`value`, or when None the default: on unless `SYNARAY_PREFLIGHT` is 0/false/no."""
    if value is not None:
        return bool(value)
    return os.environ.get(ENV_PREFLIGHT, "1").strip().lower() not in ("0", "false", "no", "off")


async def preflight(objects: Iterable[Any], timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Check every model found in `objects` (programs, rewards, optimizers, models).

    Returns:
        The number of models checked.

    Raises:
        PreflightError: one or more models cannot work; the message names each one, its
            endpoint and the error.
    """
    from synaray.lm.model_search import find_models

    models = {}
    for model in find_models(objects):
        if str(model.model).startswith("local/"):
            continue
        models.setdefault((type(model).__name__, model.model, model.api_base,
                           model.api_key_env, model.api_key), model)
    if models:  # imported first: litellm's import takes seconds, not the endpoint's time
        from synaray.lm._litellm import import_litellm

        await asyncio.to_thread(import_litellm)
    problems = await asyncio.gather(*(_check(m, timeout_s) for m in models.values()))
    failed = [p for p in problems if p]
    if failed:
        lines = "\n".join(f"  - {p}" for p in failed)
        raise PreflightError(
            f"preflight: {len(failed)} of {len(models)} model(s) cannot work; nothing was run "
            f"or written. Fix the model name, api_base or key (or skip this check with "
            f"--no-preflight / preflight=False):\n{lines}")
    return len(models)


def models_in_payloads(payloads: Iterable[Any]) -> list[Any]:
    """The language and embedding models described in program payloads (saved program
    JSON), built from their configs without importing anything the payload names."""
    from synaray.lm import EmbeddingModel, LanguageModel

    classes = {"LanguageModel": LanguageModel, "EmbeddingModel": EmbeddingModel}
    found: list[Any] = []
    stack = list(payloads)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            cls = classes.get(str(item.get("class_name")))
            if cls is not None and str(item.get("module", "")).startswith("synaray.lm") \
                    and isinstance(item.get("config"), dict):
                found.append(cls.from_config(item["config"]))
            else:
                stack.extend(item.values())
    return found


async def _check(model: Any, timeout_s: float) -> str | None:
    """None when `model` answered (or said it is busy), else what is wrong with it."""
    where = f"{model.model}" + (f" at {model.api_base}" if model.api_base else "")
    name = getattr(model, "api_key_env", None)
    if name and not model.api_key and not os.environ.get(name):
        return f"{where}: api_key_env {name!r}: the environment variable is not set"
    timeout = min(float(model.timeout), timeout_s)
    try:
        async with asyncio.timeout(timeout + 5.0):
            await _send(model, timeout)
    except LMInputError as exc:
        return f"{where}: {_reason(exc.status_code)}{_detail(exc, model)}"
    except LMTimeout as exc:
        return f"{where}: no answer within {timeout:g} s ({_detail(exc, model)})"
    except LMServerError as exc:
        if _connection_failed(exc):
            return f"{where}: cannot connect ({_root_cause(exc)})"
        return None  # the server is there and answered 5xx: the retries' business
    except TimeoutError:
        return f"{where}: no answer within {timeout:g} s"
    except LMError as exc:
        if exc.status_code == 429:
            return None
        return f"{where}: {_detail(exc, model)}"
    except Exception as exc:  # a bad argument in the model's settings
        return f"{where}: {type(exc).__name__}: {exc}"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _connection_failed(exc: BaseException) -> bool:
    """Whether no HTTP answer came at all (litellm reports it as a 500 "Connection error")."""
    return any(isinstance(c, ConnectionError) or type(c).__name__ in (
        "APIConnectionError", "ConnectError", "ClientConnectorError") for c in _causes(exc))


def _root_cause(exc: BaseException) -> str:
    root = _causes(exc)[-1]
    return f"{type(root).__name__}: {root}"


def _detail(exc: BaseException, model: Any) -> str:
    """The error's message without the model name it starts with (already shown)."""
    return str(exc).removeprefix(f"{model.model}: ")


def _reason(status: int | None) -> str:
    return {401: "the key was rejected (401): ", 403: "the key was refused (403): ",
            404: "no such model or endpoint (404): "}.get(status or 0, "")


async def _send(model: Any, timeout: float) -> None:
    from synaray.lm._litellm import NO_SDK_RETRIES, import_litellm
    from synaray.lm.embedding_model import EmbeddingModel
    from synaray.lm.errors import map_litellm_errors

    litellm = import_litellm()
    request: dict[str, Any] = {**model.litellm_kwargs, "timeout": timeout, "num_retries": 0,
                               "max_retries": NO_SDK_RETRIES}
    with map_litellm_errors(model.model):
        if isinstance(model, EmbeddingModel):
            api_key = model._api_key()
            request.update(model=model.model, input=["ping"])
            if model.api_base:
                request["api_base"] = model.api_base
            if api_key:
                request["api_key"] = api_key
            await litellm.aembedding(**request)
            return
        target = await model._resolve_target()
        request.update(model=target.model, max_tokens=1,
                       messages=[{"role": "user", "content": "Say OK."}])
        if target.api_base:
            request["api_base"] = target.api_base
        if target.api_key:
            request["api_key"] = target.api_key
        await litellm.acompletion(**request)
