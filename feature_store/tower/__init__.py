"""The item tower of `kind = deep` snapshots: its input spec, the encoding of item attributes
into the tower's inputs (numpy), and the network itself (`feature_store.tower.network`, which
imports torch: import it lazily). Format: docs/snapshot_format.md, model: docs/batch.md."""
