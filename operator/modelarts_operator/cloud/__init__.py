"""Clients for OBS and ModelArts on Huawei's own SDKs, used by the operator and nothing else directly.

The SDKs are synchronous. Kopf runs sync handlers in a thread pool; an asyncio caller wraps a call in
`asyncio.to_thread`. Retries, the per-endpoint concurrency limit and error classification live here,
so every caller gets them.
"""

from modelarts_operator.cloud.credentials import CloudCredentials, CredentialsError
from modelarts_operator.cloud.errors import CloudError, ErrorKind
from modelarts_operator.cloud.modelarts import ModelArtsApi
from modelarts_operator.cloud.obs import ObsStore, ObsUrl

__all__ = [
    "CloudCredentials", "CredentialsError", "CloudError", "ErrorKind", "ModelArtsApi", "ObsStore", "ObsUrl",
]
