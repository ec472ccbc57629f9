"""Facebook Page posts through the Graph API: one message is one public post on one Page.

``OutboundMessage.address`` is the Page id, ``body`` the post's text; ``options["link"]`` attaches a link and
``options["image"]`` (a public image URL) makes it a photo post with the text as caption. Each Page is posted
to with its own Page access token (``page_tokens``); a Page without one is a settings problem, refused before
any request.

A public post must never appear twice. When the engine sends a message again after an ``OutcomeUnknown``
(``options["resend"]``), the adapter first reads the Page's latest posts and, if one already carries exactly
this text (and link), reports that post as the message's instead of posting again (docs/social.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from channels.base import (
    AdapterBase,
    Capabilities,
    Channel,
    DeliveryEvent,
    OutboundMessage,
    SendResult,
    normalize_provider_id,
)
from channels.errors import ChannelError, ConfigurationError, OutcomeUnknown, PermanentError, Throttled
from channels.social.graph_errors import graph_error
from channels.social.transport import Answer, exchange, not_sent

_API_VERSION = re.compile(r"v\d+\.\d+")
PEER = "Graph API"


class FacebookPageAdapter(AdapterBase):
    channel: ClassVar[Channel] = Channel.SOCIAL
    # Posts go one after another: a Page is not a bulk channel, and each post is checked before the next.
    # The campaign names the Pages it posts to; each must have its token in page_tokens.
    capabilities: ClassVar[Capabilities] = Capabilities(
        window=10, peer="Graph API", targets_setting="page_tokens"
    )

    def __init__(
        self,
        *,
        page_tokens: Mapping[str, str],
        api_version: str = "v21.0",
        graph_url: str = "https://graph.facebook.com",
        timeout: float = 10.0,
        lookback_posts: int = 25,
    ) -> None:
        if not isinstance(page_tokens, Mapping) or not page_tokens:
            raise ValueError("page_tokens must map each page id to its Page access token")
        for page_id, token in page_tokens.items():
            if not str(page_id).strip() or not isinstance(token, str) or not token.strip():
                raise ValueError(f"page_tokens: page {page_id!r} needs a non-empty Page access token")
        if not _API_VERSION.fullmatch(api_version):
            raise ValueError(f"api_version {api_version!r} is not a Graph API version such as 'v21.0'")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if not 1 <= lookback_posts <= 100:
            raise ValueError(f"lookback_posts must be between 1 and 100, not {lookback_posts!r}")
        self.page_tokens = {str(k).strip(): v.strip() for k, v in page_tokens.items()}
        self.api_version = api_version
        self.graph_url = graph_url.rstrip("/")
        self.timeout = timeout
        self.lookback_posts = lookback_posts
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:  # the tokens stay out of logs
        return f"FacebookPageAdapter(graph_url={self.graph_url!r}, pages={sorted(self.page_tokens)!r})"

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """A Page post has no delivery receipt: nothing the Graph API sends back is stored for this channel."""
        return []

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if self._client is None:
            raise ConfigurationError("the Facebook Page adapter is not open")
        results = []
        # Asking again while rate limited prolongs the block, so a limit stops the rest of the window; a token
        # problem stops the rest of that Page's messages only (each Page has its own token).
        throttled: ChannelError | None = None
        refused_pages: dict[str, ChannelError] = {}
        for message in messages:
            page_id = message.address.strip()
            stopped = throttled or refused_pages.get(page_id)
            if stopped is not None:
                results.append(SendResult.failed(message.message_id, not_sent(stopped)))
                continue
            try:
                post_id = self._publish(self._client, message)
            except ChannelError as error:
                results.append(SendResult.failed(message.message_id, error))
                if isinstance(error, Throttled):
                    throttled = error
                elif isinstance(error, ConfigurationError):
                    refused_pages[page_id] = error
            else:
                results.append(SendResult.sent(message.message_id, post_id))
        return results

    # -- one post ---------------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.graph_url}/{self.api_version}/{path}"

    def _publish(self, client: httpx.Client, message: OutboundMessage) -> str:
        page_id = message.address.strip()
        token = self.page_tokens.get(page_id)
        if token is None:
            raise ConfigurationError(f"no Page access token for page {page_id} in page_tokens")
        link = _option(message, "link")
        image = _option(message, "image")
        if message.options.get("resend"):
            existing = self._find_existing(client, page_id, token, message.body, link)
            if existing is not None:
                return existing
        if image is not None:
            form = {"url": image, "caption": message.body, "access_token": token}
            request = client.build_request("POST", self._url(f"{page_id}/photos"), data=form)
        else:
            form = {"message": message.body, "access_token": token}
            if link is not None:
                form["link"] = link
            request = client.build_request("POST", self._url(f"{page_id}/feed"), data=form)
        answer = exchange(client, request, peer=PEER)
        if answer.status != 200 or "error" in answer.body:
            raise graph_error(answer, what=f"post to page {page_id}")
        return _post_id(answer, page_id)

    def _find_existing(
        self, client: httpx.Client, page_id: str, token: str, text: str, link: str | None
    ) -> str | None:
        """The id of a recent post on the Page with exactly this text (and link), if the first try made one."""
        params = {
            "fields": "id,message,link,created_time",
            "limit": str(self.lookback_posts),
            "access_token": token,
        }
        request = client.build_request("GET", self._url(f"{page_id}/feed"), params=params)
        answer = exchange(client, request, peer=PEER)
        if answer.status != 200 or "error" in answer.body:
            raise graph_error(answer, what=f"read the recent posts of page {page_id}")
        posts = answer.body.get("data")
        for post in posts if isinstance(posts, list) else []:
            if not isinstance(post, dict) or post.get("message") != text:
                continue
            if link is not None and post.get("link") not in (None, link):
                continue
            found = normalize_provider_id(str(post.get("id", "")))
            if found:
                return found
        return None


def _option(message: OutboundMessage, key: str) -> str | None:
    value = message.options.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PermanentError(f"options[{key!r}] must be a URL string, not {type(value).__name__}")
    return value


def _post_id(answer: Answer, page_id: str) -> str:
    """The post's id, ``{page_id}_{post_id}``: a photo answers with its own ``id`` and the post's ``post_id``."""
    value = answer.body.get("post_id") or answer.body.get("id")
    post_id = normalize_provider_id(str(value)) if value else None
    if post_id is None:  # the post may exist: a resend looks for it before posting again
        raise OutcomeUnknown(
            f"Graph API accepted a post to page {page_id} but returned no id", detail=answer.text
        )
    return post_id
