"""The only package that speaks Flower's API (besides the strategy plugins).

The ClientApp, the ServerApp with its delegating strategy, the DP wrappers and
mods, and SecAgg+. Importing the package itself does not import ``flwr``.
"""
