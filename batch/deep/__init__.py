"""The deep f(x; theta): a two-tower content model trained with torch (docs/batch.md).

`inputs` builds the item tower's input spec from the attribute table, `training_data` has
Spark write the training Parquet, `train_torch` is the torch training function (one process
or one DDP rank), `launch` runs it directly or through Spark's TorchDistributor, and
`features` turns the result into the `FeatureModel` the rest of the job uses.
"""
