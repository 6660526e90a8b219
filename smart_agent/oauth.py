"""Chainlit's OAuth providers and the variables each needs; Chainlit reads them, smart-agent only asks."""

from __future__ import annotations

import os
from collections.abc import Mapping

# Chainlit's OAuth providers and the variables that must all be set for each (chainlit/oauth_providers.py,
# 2.12). Chainlit reads them itself; smart-agent only asks whether any provider is set up (a login exists).
OAUTH_PROVIDER_VARS: dict[str, tuple[str, ...]] = {
    "github": ("OAUTH_GITHUB_CLIENT_ID", "OAUTH_GITHUB_CLIENT_SECRET"),
    "google": ("OAUTH_GOOGLE_CLIENT_ID", "OAUTH_GOOGLE_CLIENT_SECRET"),
    "azure-ad": ("OAUTH_AZURE_AD_CLIENT_ID", "OAUTH_AZURE_AD_CLIENT_SECRET", "OAUTH_AZURE_AD_TENANT_ID"),
    "azure-ad-hybrid": (
        "OAUTH_AZURE_AD_HYBRID_CLIENT_ID",
        "OAUTH_AZURE_AD_HYBRID_CLIENT_SECRET",
        "OAUTH_AZURE_AD_HYBRID_TENANT_ID",
    ),
    "okta": ("OAUTH_OKTA_CLIENT_ID", "OAUTH_OKTA_CLIENT_SECRET", "OAUTH_OKTA_DOMAIN"),
    "auth0": ("OAUTH_AUTH0_CLIENT_ID", "OAUTH_AUTH0_CLIENT_SECRET", "OAUTH_AUTH0_DOMAIN"),
    "descope": ("OAUTH_DESCOPE_CLIENT_ID", "OAUTH_DESCOPE_CLIENT_SECRET"),
    "aws-cognito": ("OAUTH_COGNITO_CLIENT_ID", "OAUTH_COGNITO_CLIENT_SECRET", "OAUTH_COGNITO_DOMAIN"),
    "gitlab": ("OAUTH_GITLAB_CLIENT_ID", "OAUTH_GITLAB_CLIENT_SECRET", "OAUTH_GITLAB_DOMAIN"),
    "keycloak": (
        "OAUTH_KEYCLOAK_CLIENT_ID",
        "OAUTH_KEYCLOAK_CLIENT_SECRET",
        "OAUTH_KEYCLOAK_REALM",
        "OAUTH_KEYCLOAK_BASE_URL",
    ),
    "generic": (
        "OAUTH_GENERIC_CLIENT_ID",
        "OAUTH_GENERIC_CLIENT_SECRET",
        "OAUTH_GENERIC_AUTH_URL",
        "OAUTH_GENERIC_TOKEN_URL",
        "OAUTH_GENERIC_USER_INFO_URL",
        "OAUTH_GENERIC_SCOPES",
    ),
}


def oauth_providers(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The OAuth providers whose variables are all set in the environment, as Chainlit sees them."""
    env = os.environ if environ is None else environ
    return tuple(name for name, names in OAUTH_PROVIDER_VARS.items() if all(env.get(var) for var in names))
