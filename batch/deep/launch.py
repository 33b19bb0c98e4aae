"""Run the torch training function: directly on one machine, through TorchDistributor on a
cluster (one process per GPU, DDP; the rows Parquet must then be on shared storage).

The cluster path is written for Spark's `pyspark.ml.torch.distributor.TorchDistributor` and
has not been run on a multi-GPU cluster (docs/batch.md says so).
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from batch.deep.train_torch import TowerJob, TowerResult, train_two_tower
from batch.errors import TrainingError
from batch.spark import is_local


def run_training(spark: SparkSession, job: TowerJob, processes: int = 0) -> TowerResult:
    """Train `job` here when Spark is local, else on the cluster's GPUs with DDP.

    `processes` is the number of DDP processes on a cluster (0: one per executor GPU, from
    `spark.executor.resource.gpu.amount` times executors, at least 1).
    """
    master = spark.sparkContext.master or "local"
    if is_local(master):
        result = train_two_tower(job)
    else:
        from pyspark.ml.torch.distributor import TorchDistributor

        conf = spark.sparkContext.getConf()
        gpus = int(float(conf.get("spark.executor.resource.gpu.amount", "0")))
        executors = int(conf.get("spark.executor.instances", "1"))
        count = processes or max(gpus * executors, 1)
        distributor = TorchDistributor(num_processes=count, local_mode=False, use_gpu=gpus > 0)
        result = distributor.run(train_two_tower, job)
    if result is None:
        raise TrainingError("the two-tower training returned nothing from rank 0")
    return result
