"""Provider type `azure-openai`: an Azure OpenAI resource through the `openai` SDK's Azure client.

The wire format is OpenAI's, so requests and answers are the `openai` type's; only the
client differs (`AsyncAzureOpenAI`): the endpoint (`https://NAME.openai.azure.com`), the
`api-version` query parameter, the `api-key` header, and URLs of the form
`/openai/deployments/{deployment}/chat/completions`. The SDK picks the deployment from the
request's `model`, so a `deployment` in the providers entry replaces the prompt's model name
on the wire (the pricing table and results keep the model name). Embeddings go to the
deployment named by `embedding_model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from promptyard.evals.providers.base import ChatRequest, Completion, provider
from promptyard.evals.providers.openai import OpenAIProvider
from promptyard.evals.providers.sdk import sdk_client
from promptyard.spec import ProviderConfig

DEFAULT_API_VERSION = "2024-10-21"  # the current GA version of the data-plane API


@provider("azure-openai")
class AzureOpenAIProvider(OpenAIProvider):
    default_env: ClassVar[Mapping[str, str]] = {
        "api_key_env": "AZURE_OPENAI_API_KEY",
        "base_url_env": "AZURE_OPENAI_ENDPOINT",
    }
    # an embeddings deployment has whatever name it was given
    default_embedding_model: ClassVar[str | None] = None

    def __init__(self, name: str, config: ProviderConfig, environ: Mapping[str, str]) -> None:
        super().__init__(name, config, environ)
        self.api_version = config.api_version or DEFAULT_API_VERSION

    def describe(self) -> str:
        return (
            f"azure-openai at {self.base_url or '(no endpoint)'} (api-version {self.api_version})"
        )

    def configuration_problem(self) -> str | None:
        """An Azure call needs both the endpoint and the key: either alone is a mistake."""
        problem = super().configuration_problem()
        if problem is not None:
            return problem
        if self.api_key and not self.base_url:
            where = self.config.base_url_env or "base_url in promptyard.yaml"
            return f"no Azure OpenAI endpoint: set {where} (https://RESOURCE.openai.azure.com)"
        if self.base_url and not self.api_key:
            return f"no Azure OpenAI key: set {self.config.api_key_env or 'api_key_env'}"
        return None

    def _client(self) -> Any:
        if self._client_instance is None:
            import openai

            # configuration_problem() refuses a missing endpoint before any call is made
            assert self.base_url is not None
            self._client_instance = sdk_client(
                openai,
                openai.AsyncAzureOpenAI,
                self.config.timeout_s,
                azure_endpoint=self.base_url,
                api_key=self.api_key,
                api_version=self.api_version,
            )
        return self._client_instance

    async def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        if self.config.deployment:
            request = dataclasses.replace(request, model=self.config.deployment)
        return await super().complete(request, timeout=timeout)
