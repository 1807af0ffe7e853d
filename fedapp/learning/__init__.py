"""Keras alone: the model, its train steps (FedProx, DP-SGD), metrics and baselines.

Importing this package does not import TensorFlow; its modules do.
"""
