"""Online featurization of items added by `PUT /items/{item}`: the served item tower, the
AIMD-batched calls to it, and the served catalog extended with the added items."""
