"""Tools beside asv for the torch.compile runtime-overhead suite: build index, asv plugins, runner."""
