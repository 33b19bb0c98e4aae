"""`PUT /items/{item}`: add an item with its attributes; it is featurized and served.

Access control (`online.access`) asks for the `write` role on this path, as for /observe.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from feature_store.tower.encode import check_attributes
from online.deps import ServiceDep, openapi_body, read_body
from online.errors import BadRequestError, UnprocessableError
from online.schemas import json_response

router = APIRouter(tags=["items"])


class ItemBody(BaseModel):
    """The body of `PUT /items/{item}`: the item's attributes (column → value)."""

    model_config = ConfigDict(extra="forbid")
    attributes: dict[str, Any]


class ItemResponse(BaseModel):
    """The added item, the model version that featurized it, and its features."""

    item: str
    model: str
    version: int
    features: list[float]


def _body(raw: bytes) -> ItemBody:
    try:
        return ItemBody.model_validate_json(raw)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise BadRequestError("the body is not valid JSON") from None
        raise UnprocessableError(
            'the body must be {"attributes": {column: value, ...}}: '
            + "; ".join(str(item["msg"]) for item in error.errors(include_url=False))
        ) from None


@router.put("/items/{item}", response_model=ItemResponse, openapi_extra=openapi_body(ItemBody))
async def put_item(
    item: str,
    request: Request,
    service: ServiceDep,
    model: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Featurize the item with the served item tower, persist it, serve it (every worker
    within one poll interval; this one at once)."""
    if not item or len(item) > 256:
        raise UnprocessableError("an item id has 1 to 256 characters")
    body = _body(await read_body(request, service.settings.max_body_bytes))
    added = service.items
    served = service.models.get(model)
    if added is None:
        raise UnprocessableError("this service does not accept new items")
    tower = added.tower(served.name)  # 409 for a snapshot without a tower
    base = added.base(served.name)
    if base is not None and item in base.item_index:
        raise UnprocessableError(
            f"item {item!r} is in {served.name} v{tower.version}'s training data; its "
            "attributes change with the next training run"
        )
    attributes = check_attributes(tower.spec, body.attributes)  # 400, nothing stored
    features = await added.featurize(served.name, attributes)
    await asyncio.to_thread(added.add, served.name, item, attributes, service.install)
    answer = ItemResponse(
        item=item, model=served.name, version=tower.version, features=features.tolist()
    )
    return json_response(answer.model_dump())
