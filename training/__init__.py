"""The offline pipeline: data, features, train, select the filter size, prune, quantize, fuse.

Installed as `edge_asc.training`; only the `train` command imports it, lazily, so the live app
never needs torch.
"""
