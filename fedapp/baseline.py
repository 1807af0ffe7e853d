"""The centralized baseline: what pooling everyone's rows would have given.

Same preprocessing, model, initial weights and total epochs as the federated
run, on all clients' training rows together, scored on the same global test
set. Only a simulation can afford it; it is the yardstick for what federation
costs.
"""

from __future__ import annotations

from fedapp import data
from fedapp.config import RunConfig
from fedapp.data.stats import Preprocessor


def centralized(cfg: RunConfig, prep: Preprocessor) -> dict[str, float]:
    """Train on the pooled training rows for ``rounds * local_epochs`` epochs."""
    from fedapp.model import build_model, evaluate, train

    x, y = prep.transform(data.pooled_train(cfg))
    x_test, y_test = prep.transform(data.global_test(cfg))
    model = build_model(prep.n_features, cfg.hidden_units, cfg.learning_rate, cfg.seed)
    train(
        model, x, y,
        epochs=cfg.rounds * cfg.local_epochs,
        batch_size=cfg.batch_size,
        seed=[cfg.seed, 1 << 20],
    )  # fmt: skip
    return evaluate(model, x_test, y_test)
