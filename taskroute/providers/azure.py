"""Azure OpenAI's classic deployment URLs, behind the OpenAI adapter.

Azure serves each deployment at `{resource}/openai/deployments/{deployment}/chat/completions
?api-version=...` and takes its key in an `api-key` header. A policy gives either the resource
and lets each model's name be its deployment:

    providers:
      azure:
        api: azure
        base url: https://my-resource.openai.azure.com
        api key env: AZURE_OPENAI_API_KEY          # sent as `api-key: <key>`
        options: {api version: 2024-10-21}
    models:
      azure/my-gpt-4o-deployment: {tier: balanced, price: {input: 2.5, output: 10}}

or one deployment's whole URL, query and all, as Azure's portal shows it
(`base url: https://my-resource.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21`);
the path goes in before the query either way. A key may also come as a header read from the
environment (`headers: {api-key: {env: AZURE_KEY}}`). Azure's newer `/openai/v1/` API is
OpenAI's own shape: use `api: openai` for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from taskroute.policy.model import ProviderSpec
from taskroute.providers.openai import OpenAIProvider

DEPLOYMENTS = "/openai/deployments/"


class AzureOpenAIProvider(OpenAIProvider):
    """A `Provider` for Azure OpenAI's deployment URLs (the OpenAI wire format otherwise)."""

    def __init__(
        self, spec: ProviderSpec, *, api_version: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        url = urlsplit(spec.base_url)
        query = dict(parse_qsl(url.query))
        if api_version is not None:
            query["api-version"] = api_version
        if "api-version" not in query:
            raise ValueError("Azure needs an API version: options: {api version: 2024-10-21}, "
                             "or ?api-version=... in the base url")
        base = urlunsplit((url.scheme, url.netloc, url.path.rstrip("/"), "", ""))
        super().__init__(replace(spec, base_url=base), env=env, key_header="api-key",
                         key_prefix="")
        self._query = "?" + urlencode(query)
        self.openai_itself = True   # Azure refuses arguments OpenAI does not know, as OpenAI does
        # A base URL naming one deployment serves every model of this provider from it.
        self._one_deployment = DEPLOYMENTS in url.path

    def __repr__(self) -> str:
        return f"AzureOpenAIProvider(name={self.name!r}, base_url={self._http.base_url!r})"

    def path(self, model: str) -> str:
        if self._one_deployment:
            return "/chat/completions" + self._query
        return f"{DEPLOYMENTS}{quote(model, safe='')}/chat/completions{self._query}"


def build(spec: ProviderSpec, env: Mapping[str, str] | None) -> AzureOpenAIProvider:
    """The `azure` provider kind, registered in `taskroute.plugins.PROVIDERS`; its one option
    is `api version`."""
    unknown = set(spec.options) - {"api_version"}
    if unknown:
        raise ValueError(f"the azure provider kind takes only 'api version', got "
                         f"{', '.join(sorted(k.replace('_', ' ') for k in unknown))}")
    version = spec.options.get("api_version")
    return AzureOpenAIProvider(spec, api_version=None if version is None else str(version),
                               env=env)
