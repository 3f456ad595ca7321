"""Native providers' regions are catalog metadata: the EU/US presets select Bedrock and Vertex models by them."""

from __future__ import annotations

import json

import pytest

from router.config import parse_config
from router.errors import ConfigError
from router.governance.rules import preset_models
from router.mock import vertex as mock_vertex
from router.providers.bedrock import split_region
from router.providers.vertex import split_location
from router.routing.catalog import Catalog

CONFIG = f"""
providers:
  bedrock:
    kind: bedrock
    region: us-west-2
    aws_access_key_id: AKID
    aws_secret_access_key: SECRET
  vertex:
    kind: vertex
    project: p
    region: europe-west4
    service_account: '{json.dumps(mock_vertex.service_account("https://oauth2.googleapis.com/token"))}'
  google:
    kind: gemini
    api_key: k
models:
  - id: bedrock/claude-sonnet-4-5-v2@eu-central-1
    upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0@eu-central-1
  - id: bedrock/claude-sonnet-4-5-v2@us-east-1
    upstream_model: us.anthropic.claude-sonnet-4-5-20250929-v1:0@us-east-1
  - id: bedrock/nova
    upstream_model: amazon.nova-pro-v1:0
  - id: bedrock/pinned
    upstream_model: amazon.nova-pro-v1:0@us-east-1
    region: eu-west-1
  - id: vertex/google/gemini-2.5-pro
  - id: vertex/google/gemini-2.5-flash@us-central1
  - id: vertex/anthropic/claude-3-7-sonnet@20250219
  - id: google/gemini-2.5-pro
"""


def test_regions_and_presets() -> None:
    catalog = Catalog(parse_config(CONFIG), 0)
    regions = {m: r for m, (r, _) in catalog.metadata.items()}
    assert regions == {
        "bedrock/claude-sonnet-4-5-v2@eu-central-1": "eu-central-1",
        "bedrock/claude-sonnet-4-5-v2@us-east-1": "us-east-1",
        "bedrock/nova": "us-west-2",
        "bedrock/pinned": "eu-west-1",  # an explicit region wins
        "vertex/google/gemini-2.5-pro": "europe-west4",
        "vertex/google/gemini-2.5-flash@us-central1": "us-central1",
        "vertex/anthropic/claude-3-7-sonnet@20250219": "europe-west4",
        "google/gemini-2.5-pro": "global",
    }
    eu = preset_models("eu-only", catalog.metadata)
    assert "bedrock/claude-sonnet-4-5-v2@eu-central-1" in eu and "vertex/google/gemini-2.5-pro" in eu
    assert "bedrock/claude-sonnet-4-5-v2@us-east-1" not in eu and "google/gemini-2.5-pro" not in eu
    assert "bedrock/claude-sonnet-4-5-v2@us-east-1" in preset_models("us-only", catalog.metadata)
    eu_model = catalog.get("bedrock/claude-sonnet-4-5-v2@eu-central-1")
    assert eu_model is not None and eu_model.prices is not None and eu_model.prices.input == 3.0
    assert eu_model.urls["chat"].startswith("https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic")
    gemini = catalog.get("vertex/google/gemini-2.5-pro")
    assert gemini is not None and gemini.prices is not None and gemini.prices.input == 1.25
    vertex = catalog.get("vertex/anthropic/claude-3-7-sonnet@20250219")
    assert vertex is not None and vertex.urls["chat"] == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4"
        "/publishers/anthropic/models/claude-3-7-sonnet@20250219:rawPredict"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("anthropic.claude-v2:1@eu-central-1", ("anthropic.claude-v2:1", "eu-central-1")),
        ("m@us-gov-west-1", ("m", "us-gov-west-1")),
        ("m@fail=429", ("m@fail=429", None)),
        ("m", ("m", None)),
    ],
)
def test_split_region(name: str, expected: tuple[str, str | None]) -> None:
    assert split_region(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("google/gemini-2.5-pro@europe-west1", ("google/gemini-2.5-pro", "europe-west1")),
        ("anthropic/claude-3-7-sonnet@20250219", ("anthropic/claude-3-7-sonnet@20250219", None)),
        ("claude@20250219@global", ("claude@20250219", "global")),
    ],
)
def test_split_location(name: str, expected: tuple[str, str | None]) -> None:
    assert split_location(name) == expected


def test_vertex_needs_a_project_and_credentials() -> None:
    base = "providers:\n  v:\n    kind: vertex\nmodels:\n  - id: v/google/gemini-2.5-pro\n"
    with pytest.raises(ConfigError, match="project"):
        Catalog(parse_config(base), 0)
    with pytest.raises(ConfigError, match="service_account"):
        Catalog(parse_config(base.replace("kind: vertex", "kind: vertex\n    project: p")), 0)


def test_invoke_model_is_for_anthropic_models_only() -> None:
    config = (
        "providers:\n  b:\n    kind: bedrock\n    bedrock_api: invoke\n"
        "models:\n  - id: b/llama\n    upstream_model: meta.llama3-3-70b-instruct-v1:0\n"
    )
    with pytest.raises(ConfigError, match="Anthropic models only"):
        Catalog(parse_config(config), 0)


def test_region_names_of_every_cloud_reach_the_presets() -> None:
    metadata = {
        "azure/gpt-4o@swedencentral": ("swedencentral", False),
        "azure/gpt-4o@westeurope": ("westeurope", False),
        "azure/gpt-4o@eastus2": ("eastus2", False),
        "azure/gpt-4o@southcentralus": ("southcentralus", False),
        "azure/gpt-4o@uksouth": ("uksouth", False),  # not in the EU
        "azure/gpt-4o@switzerlandnorth": ("switzerlandnorth", True),  # not in the EU, but ZDR
        "vertex/gemini@europe-west4": ("europe-west4", False),
        "vertex/gemini@us-central1": ("us-central1", False),
        "bedrock/claude@eu-central-1": ("eu-central-1", False),
        "mock/global": ("global", False),
    }
    assert preset_models("eu-only", metadata) == [
        "azure/gpt-4o@swedencentral",
        "azure/gpt-4o@westeurope",
        "bedrock/claude@eu-central-1",
        "vertex/gemini@europe-west4",
    ]
    assert preset_models("us-only", metadata) == [
        "azure/gpt-4o@eastus2",
        "azure/gpt-4o@southcentralus",
        "vertex/gemini@us-central1",
    ]
    assert "azure/gpt-4o@switzerlandnorth" in preset_models("eu-zdr", metadata)
    assert "azure/gpt-4o@uksouth" not in preset_models("eu-zdr", metadata)
