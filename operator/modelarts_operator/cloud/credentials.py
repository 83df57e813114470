"""Cloud credentials from a plain mapping, shaped as a Kubernetes Secret's data gives them.

Keys: `ak`, `sk`, `projectId`, `region`, and optionally `obsEndpoint`, `modelartsEndpoint` (the local
cloud, or a private endpoint). Values may be str or bytes (decoded Secret data). Nothing here ever
puts the key values into a message: validation errors name the field and the rule only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError


class CredentialsError(ValueError):
    """The credentials mapping is incomplete or malformed (the message never holds a value)."""


class CloudCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, hide_input_in_errors=True)

    ak: SecretStr = Field(description="access key id")
    sk: SecretStr = Field(description="secret access key")
    project_id: str = Field(alias="projectId", pattern=r"^[0-9A-Za-z-]{1,64}$")
    region: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)+$")
    obs_endpoint: str | None = Field(None, alias="obsEndpoint", pattern=r"^https?://")
    modelarts_endpoint: str | None = Field(None, alias="modelartsEndpoint", pattern=r"^https?://")

    @classmethod
    def from_mapping(cls, data: Mapping[str, str | bytes]) -> CloudCredentials:
        values = {}
        for key, value in data.items():
            text = value.decode("utf-8") if isinstance(value, bytes | bytearray) else value
            values[key] = text.strip() if isinstance(text, str) else text
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = error["loc"][0] if error["loc"] else "?"
                alias = cls.model_fields[field].alias if field in cls.model_fields else None
                problems.append(f"{alias or field}: {error['msg']}")
            raise CredentialsError("invalid cloud credentials: " + "; ".join(problems)) from None

    @property
    def obs_server(self) -> str:
        return self.obs_endpoint or f"https://obs.{self.region}.myhuaweicloud.com"

    @property
    def modelarts_server(self) -> str:
        return self.modelarts_endpoint or f"https://modelarts.{self.region}.myhuaweicloud.com"

    def fingerprint(self) -> tuple:
        """Identity of these credentials for client caches: a rotated key gives a new client."""
        return (self.ak.get_secret_value(), hash(self.sk.get_secret_value()), self.project_id, self.region,
                self.obs_server, self.modelarts_server)


# Called on every cloud call, so a rotated Secret is picked up without a restart.
CredentialsProvider = Callable[[], CloudCredentials]
