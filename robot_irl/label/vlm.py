"""The ``vlm`` labeller: any OpenAI-compatible chat-completions endpoint with image input.

vLLM, Ollama (``http://127.0.0.1:11434/v1``), llama.cpp server, LM Studio and hosted APIs all speak
``POST {base_url}/chat/completions``. Each query is two requests (:mod:`robot_irl.label.prompts`): stage 1 shows
both images as base64 PNG ``image_url`` data URLs and asks for an analysis; stage 2 gets the analysis text and asks
for ``0``, ``1`` or ``-1``. Temperature 0.

Transport: the standard library (``urllib``), one connection per request, a per-request timeout, retries with
exponential backoff on timeouts, connection errors, malformed bodies, 408/409/429 and 5xx, honouring
``Retry-After``; a concurrency limit is the job's thread pool and a token-bucket :class:`RateLimiter` spaces request
starts across threads. Malformed, refused or empty replies become -1 with the reason kept; nothing raises.

The API key is read from the environment variable named by ``api_key_env`` (none set: no ``Authorization``
header, as local servers need). It is sent only in the header and redacted (:func:`redact`) from every error text,
so it never reaches a log, the label file or a saved config.
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.label.backends import Answer, Labeller, Query
from robot_irl.label.prompts import PROMPT_VERSION, PROMPTS, PromptTemplate, get_prompt, parse_label

if TYPE_CHECKING:
    from robot_irl.label.job import LabelConfig
    from robot_irl.label.pairs import FrameSource

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
REDACTED = "***"


@dataclass
class VLMConfig(Config):
    """How to reach the model and how hard to try. ``rate_limit`` is requests per second (0: unlimited)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    prompt_version: str = PROMPT_VERSION
    concurrency: int = 4
    rate_limit: float = 0.0
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 300.0
    temperature: float = 0.0
    max_tokens_analysis: int = 512
    max_tokens_label: int = 64
    stage2_images: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)
    cache: bool = True
    cache_path: str = ""

    def validate(self) -> None:
        w = "VLMConfig"
        check(self.base_url.startswith(("http://", "https://")), f"{w}.base_url",
              f"must start with http:// or https://, got {self.base_url!r}")
        check(self.prompt_version in PROMPTS, f"{w}.prompt_version",
              f"unknown {self.prompt_version!r}; known: {sorted(PROMPTS)}")
        check(self.concurrency >= 1, f"{w}.concurrency", f"must be >= 1, got {self.concurrency}")
        check(self.rate_limit >= 0, f"{w}.rate_limit", f"must be >= 0 (0: unlimited), got {self.rate_limit}")
        check(self.timeout_s > 0, f"{w}.timeout_s", f"must be > 0, got {self.timeout_s}")
        check(self.max_retries >= 0, f"{w}.max_retries", f"must be >= 0, got {self.max_retries}")
        check(0 <= self.backoff_s <= self.backoff_max_s, f"{w}.backoff_s",
              f"must be in [0, backoff_max_s={self.backoff_max_s}], got {self.backoff_s}")
        check(self.max_retry_after_s >= 0, f"{w}.max_retry_after_s", "must be >= 0")
        check(0 <= self.temperature <= 2, f"{w}.temperature", f"must be in [0, 2], got {self.temperature}")
        check(self.max_tokens_analysis >= 1 and self.max_tokens_label >= 1, f"{w}.max_tokens_*", "must be >= 1")
        check(self.api_key_env == "" or self.api_key_env.replace("_", "").isalnum(), f"{w}.api_key_env",
              f"must be the NAME of an environment variable (the key itself is never configured), got a value "
              f"of {len(self.api_key_env)} characters")
        reserved = {"model", "messages", "temperature", "max_tokens"} & set(self.extra_body)
        check(not reserved, f"{w}.extra_body", f"may not set {sorted(reserved)}")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def api_key(self) -> str | None:
        return (os.environ.get(self.api_key_env) or None) if self.api_key_env else None


def redact(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """``text`` with every secret (and its base64/URL-quoted forms) replaced by ``***``."""
    import urllib.parse

    for secret in secrets:
        if not secret:
            continue
        for form in {secret, urllib.parse.quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}:
            text = text.replace(form, REDACTED)
    return text


class RateLimiter:
    """A thread-safe token bucket: at most ``rate`` acquisitions per second on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the time waited (s). ``rate`` 0: no limit."""
        if self.rate <= 0:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                delay = (1.0 - self._tokens) / self.rate
            time.sleep(delay)
            waited += delay


# ---------------------------------------------------------------------------------------------------------------
# the HTTP client
# ---------------------------------------------------------------------------------------------------------------
class ChatError(Exception):
    """A request that failed for good (after retries, or not retryable); the message is already redacted."""

    def __init__(self, message: str, kind: str = "error", attempts: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, kind: str = "error") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind


@dataclass
class ChatReply:
    content: str | None
    refusal: str | None
    finish_reason: str | None
    attempts: int


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _message_text(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ValueError(f"message content is a {type(content).__name__}")


class ChatClient:
    """POSTs chat completions with retries, backoff, ``Retry-After``, a timeout and a shared rate limit."""

    def __init__(self, config: VLMConfig, api_key: str | None = None,
                 limiter: RateLimiter | None = None) -> None:
        self.config = config
        self._api_key = api_key
        self.limiter = limiter or RateLimiter(config.rate_limit)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def _redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def complete(self, messages: list[dict], max_tokens: int) -> ChatReply:
        """One chat completion; raises :class:`ChatError` when every attempt failed."""
        c = self.config
        body = {**c.extra_body, "model": c.model, "messages": messages, "temperature": c.temperature,
                "max_tokens": max_tokens}
        payload = json.dumps(body).encode()
        for attempt in range(1, c.max_retries + 2):
            self.limiter.acquire()
            try:
                return self._parse(self._post(payload), attempt)
            except _Retryable as e:
                message = self._redact(str(e))
                if attempt > c.max_retries:
                    raise ChatError(f"{message} (after {attempt} attempts)", e.kind, attempt) from None
                delay = self._delay(attempt, e.retry_after)
                log.info("chat request attempt %d failed: %s; retrying in %.2f s", attempt, message, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        c = self.config
        if retry_after is not None:
            return min(retry_after, c.max_retry_after_s)
        with self._rng_lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(c.backoff_max_s, c.backoff_s * 2 ** (attempt - 1)) * jitter

    def _post(self, payload: bytes) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.config.url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            self._raise_http(e)
        except TimeoutError as e:
            raise _Retryable(f"timed out after {self.config.timeout_s} s ({e})", kind="timeout") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Retryable(f"timed out after {self.config.timeout_s} s", kind="timeout") from None
            raise _Retryable(f"cannot reach {self.config.url}: {e.reason}", kind="connection") from None
        except (ConnectionError, OSError) as e:
            raise _Retryable(f"connection to {self.config.url} failed: {e}", kind="connection") from None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable(f"malformed reply (not JSON): {raw[:200]!r}", kind="malformed") from None

    def _raise_http(self, e: urllib.error.HTTPError) -> None:
        try:
            detail = e.read()[:300].decode("utf-8", "replace")
        except OSError:
            detail = ""
        message = f"HTTP {e.code} from {self.config.url}: {detail.strip()}"
        if e.code in RETRYABLE_STATUS:
            raise _Retryable(message, _retry_after(e.headers.get("Retry-After")), kind=f"http {e.code}") from None
        raise ChatError(self._redact(message), f"http {e.code}", 1) from None

    @staticmethod
    def _parse(data: Any, attempt: int) -> ChatReply:
        try:
            if isinstance(data, dict) and "error" in data and "choices" not in data:
                raise _Retryable(f"error reply: {json.dumps(data['error'])[:300]}", kind="error reply")
            choice = data["choices"][0]
            message = choice.get("message") or {}
            return ChatReply(_message_text(message.get("content")), message.get("refusal"),
                             choice.get("finish_reason"), attempt)
        except _Retryable:
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            raise _Retryable(f"malformed reply ({type(e).__name__}: {e}): {json.dumps(data)[:200]}",
                             kind="malformed") from None


# ---------------------------------------------------------------------------------------------------------------
# images and messages
# ---------------------------------------------------------------------------------------------------------------
def png_data_url(image: np.ndarray) -> str:
    """An HxWx3 uint8 image as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image_parts(template: PromptTemplate, urls: tuple[str, str]) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": template.intro}]
    for caption, url in zip(template.image_captions, urls):
        parts += [{"type": "text", "text": caption}, {"type": "image_url", "image_url": {"url": url}}]
    return parts


def stage1_messages(template: PromptTemplate, goal: str, urls: tuple[str, str]) -> list[dict]:
    return [{"role": "user", "content": [*_image_parts(template, urls),
                                         {"type": "text", "text": template.stage1(goal)}]}]


def stage2_messages(template: PromptTemplate, goal: str, analysis: str,
                    urls: tuple[str, str] | None = None) -> list[dict]:
    text = template.stage2(goal, analysis)
    if urls is None:
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": [*_image_parts(template, urls), {"type": "text", "text": text}]}]


def cache_key(model: str, prompt_version: str, goal: str, image_hashes: tuple[str, str],
              stage2_images: bool = False) -> str:
    """The cache key of a query: the images (in order), the prompt (version and goal) and the model."""
    blob = json.dumps([model, prompt_version, goal, list(image_hashes), bool(stage2_images)])
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# the labeller
# ---------------------------------------------------------------------------------------------------------------
class VLMLabeller(Labeller):
    """Two-stage RL-VLM-F labelling through an OpenAI-compatible endpoint, with a reply cache."""

    name = "vlm"
    needs_images = True

    def __init__(self, config: VLMConfig, cache_path: str | Path | None = None,
                 api_key: str | None = None) -> None:
        from robot_irl.label.store import LabelCache

        if not config.model:
            raise ValueError("the vlm labeller needs a model name (--model or vlm.model)")
        self.config = config
        self.model = config.model
        self.template = get_prompt(config.prompt_version)
        self.prompt_version = self.template.version
        self.client = ChatClient(config, api_key if api_key is not None else config.api_key())
        self.cache = LabelCache(cache_path, secrets=self.secrets) if cache_path and config.cache else None

    @classmethod
    def from_config(cls, config: LabelConfig, source: FrameSource, out_dir: Path) -> VLMLabeller:
        cache_path = config.vlm.cache_path or Path(out_dir) / "vlm_cache.jsonl"
        return cls(config.vlm, cache_path)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.client.secrets

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "base_url": redact(self.config.base_url, self.secrets),
                "cache": str(self.cache.path) if self.cache else None}

    def label(self, query: Query) -> Answer:
        started = time.perf_counter()
        try:
            answer = self._label(query)
        except ChatError as e:
            answer = Answer(-1, "error", error=str(e), attempts=e.attempts)
        except Exception as e:  # noqa: BLE001 - a bad reply or a bug in one query must not end the job
            answer = Answer(-1, "error", error=redact(f"{type(e).__name__}: {e}", self.secrets))
        answer.latency_s = round(time.perf_counter() - started, 4)
        return answer

    def _label(self, query: Query) -> Answer:
        if query.images is None or query.image_hashes is None:
            raise ValueError("the vlm labeller needs the pair's images")
        goal = query.goal or ""
        key = cache_key(self.model, self.prompt_version, goal, query.image_hashes, self.config.stage2_images)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return Answer(int(hit["label"]), hit["reason"], raw=list(hit["raw"]), cached=True)
        urls = (png_data_url(query.images[0]), png_data_url(query.images[1]))
        answer = self._ask(goal, urls)
        if self.cache is not None and answer.error is None:
            self.cache.put(key, {"label": answer.label, "reason": answer.reason, "raw": answer.raw,
                                 "model": self.model, "prompt_version": self.prompt_version})
        return answer

    def _ask(self, goal: str, urls: tuple[str, str]) -> Answer:
        c = self.config
        first = self.client.complete(stage1_messages(self.template, goal, urls), c.max_tokens_analysis)
        if (stop := self._no_text(first, stage=1)) is not None:
            return stop
        second = self.client.complete(
            stage2_messages(self.template, goal, first.content, urls if c.stage2_images else None),
            c.max_tokens_label)
        attempts = first.attempts + second.attempts
        if (stop := self._no_text(second, stage=2, analysis=first.content)) is not None:
            stop.attempts = attempts
            return stop
        label, reason = parse_label(second.content)
        return Answer(label, reason, raw=[first.content, second.content], attempts=attempts)

    @staticmethod
    def _no_text(reply: ChatReply, stage: int, analysis: str = "") -> Answer | None:
        """-1 for a refused or empty reply (the reason names the stage), else None."""
        raw = [analysis, ""] if stage == 2 else ["", ""]
        if reply.refusal or reply.finish_reason == "content_filter":
            refusal = reply.refusal or f"finish_reason {reply.finish_reason}"
            raw[stage - 1] = reply.content or ""
            return Answer(-1, "refused", raw=raw, attempts=reply.attempts,
                          extra={"detail": f"stage {stage} refused: {refusal}"[:500]})
        if not (reply.content or "").strip():
            return Answer(-1, "empty", raw=raw, attempts=reply.attempts,
                          extra={"detail": f"stage {stage} reply empty (finish_reason {reply.finish_reason})"})
        return None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


__all__ = ["ChatClient", "ChatError", "RateLimiter", "VLMConfig", "VLMLabeller", "cache_key", "png_data_url",
           "redact", "stage1_messages", "stage2_messages"]
