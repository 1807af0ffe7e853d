"""fedapp: federated learning across institutions on Flower."""

import os
from importlib.metadata import PackageNotFoundError, version

# TensorFlow reads these once, when first imported: set them before any fedapp
# process (or a Ray worker, which inherits the environment) imports it. oneDNN's
# custom ops bring nothing to a small MLP (measured slightly slower) and their
# start-up notice cannot be silenced otherwise. Users' own settings win.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

try:
    __version__ = version("fedapp")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
