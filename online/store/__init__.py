"""The Redis client side of the weight store.

slots.py            hash slots: the key a command names, CRC16 of its hash tag
cluster_client.py   the lean RESP client over a Redis Cluster (MOVED, ASK, TRYAGAIN)
connect.py          the client a URL asks for: one node, or a cluster
"""
