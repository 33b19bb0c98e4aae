"""Items added online (`PUT /items`) joined to a training run's item attribute table."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def with_added_items(attributes: pa.Table | None, added: pa.Table | None) -> pa.Table | None:
    """`attributes` plus the `added` items it lacks, cast to its column types.

    The dataset's own rows win for an item in both; added columns the dataset lacks are dropped
    (the item tower reads only the dataset's columns), and missing ones are null.
    """
    if added is None or added.num_rows == 0:
        return attributes
    if attributes is None:
        return added
    new = added.filter(pc.invert(pc.is_in(added.column("item_id"), attributes.column("item_id"))))
    columns = {}
    for field in attributes.schema:
        if field.name in new.column_names:
            columns[field.name] = new.column(field.name).cast(field.type)
        else:
            columns[field.name] = pa.nulls(new.num_rows, field.type)
    return pa.concat_tables([attributes, pa.table(columns, schema=attributes.schema)])
