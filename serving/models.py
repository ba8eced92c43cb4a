"""The API's request and response shapes, for validation and the OpenAPI document; the
per-feature shapes come from the online features (serving/online_features.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema, create_model

from serving.online_features import ONLINE, OnlineFeature
from serving.status import Status

# Ids within the integers a JSON number carries exactly (as a double): clients that read JSON
# numbers as doubles (JavaScript, and schemathesis's own bounds) would change larger ones.
MAX_ID = 2**53 - 1
UserId = Annotated[int, Field(ge=-MAX_ID, le=MAX_ID, description="the user's id, |id| <= 2^53 - 1")]


def _json_integer(v: object) -> object:
    """JSON Schema's integers: 7 and 7.0, never "7" or true (which pydantic's lax mode takes)."""
    if isinstance(v, str | bool):
        raise ValueError("should be a JSON integer")
    return v


JsonUserId = Annotated[UserId, BeforeValidator(_json_integer)]


def _known(name: str) -> str:
    if name not in ONLINE:
        raise ValueError(f"unknown feature {name!r}; known: {', '.join(ONLINE)}")
    return name


FeatureName = Annotated[str, Strict(), AfterValidator(_known), WithJsonSchema({"type": "string", "enum": list(ONLINE)})]


def _entry(of: OnlineFeature) -> type[BaseModel]:
    name = "".join(p.capitalize() for p in of.name.split("_"))
    if of.layer == "stream":
        when: dict[str, Any] = {
            "event_time": (datetime | None, Field(description="event time of the newest event behind the value"))
        }
    else:
        when = {"as_of": (date | None, Field(description="the day the value is as of (over the 30 days up to it)"))}
    return create_model(
        name,
        __doc__=f"{of.description} ({of.layer} layer)",
        status=(Status, ...),
        value=(of.value_type | None, Field(description="null when NOT_FOUND")),
        **when,
    )


ENTRIES = {name: _entry(of) for name, of in ONLINE.items()}
AllFeatures = create_model("AllFeatures", **{n: (m, ...) for n, m in ENTRIES.items()})  # type: ignore[call-overload]
SomeFeatures = create_model(
    "SomeFeatures",
    __doc__="The features asked for, by name.",
    **{n: (m, Field(None)) for n, m in ENTRIES.items()},  # type: ignore[call-overload]
)


class UserFeatures(BaseModel):
    user_id: int
    features: AllFeatures  # type: ignore[valid-type]


class UserSomeFeatures(BaseModel):
    user_id: int
    features: SomeFeatures  # type: ignore[valid-type]


class BatchResponse(BaseModel):
    users: list[UserSomeFeatures] = Field(description="one per user id asked for, in the order asked")


class Error(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    detail: str | None = None


def batch_request(max_users: int) -> type[BaseModel]:
    """POST /v1/features's body, with the configured cap on users."""
    return create_model(
        "FeaturesRequest",
        __config__=ConfigDict(extra="forbid"),
        user_ids=(list[JsonUserId], Field(min_length=1, max_length=max_users)),
        features=(list[FeatureName], Field(min_length=1, description="feature names; see GET /v1/users/{id}/features")),
    )
