"""What fedapp's server and clients say to each other: message keys and node config.

Kept free of heavy imports so that the deployment pre-flight checks can read
a SuperNode's node config without loading the ClientApp.
"""

from __future__ import annotations

from flwr.common.config import parse_config_args

# The server's one-off query for a client's aggregate statistics.
STATISTICS_QUERY = "fedapp-statistics"
# The fitted federated preprocessing, sent with every round's config.
PREPROCESSING_KEY = "fedapp-preprocessing"
ROUND_KEY = "fedapp-round"
# The run's name (its directory's), sent with every round's config: the key of
# what a client keeps on disk for the run, which a resumed run finds again.
RUN_KEY = "fedapp-run"
# The closing query, after the last round: the thresholds to count confusions
# at (JSON; "" for none) and the epochs to fine-tune for, and the replies'
# keys: the counts (JSON rows of tp, fp, tn, fn) and the fine-tuned model's scores (JSON).
CLOSING_THRESHOLDS = "fedapp-closing-thresholds"
CLOSING_EPOCHS = "fedapp-closing-epochs"
COUNTS_KEY = "fedapp-counts"
FINE_TUNED_KEY = "fedapp-fine-tuned"
# Node config of a SuperNode, and the tag on each of its replies: which institution it is.
PARTITION_KEY = "partition-id"
# Node config of a deployed SuperNode: the file holding its institution's rows.
DATA_PATH_KEY = "data-path"
# Node config of a deployed SuperNode: where it keeps its state between rounds
# on disk (SCAFFOLD's c_i, record-level DP's spent rounds), so that a resumed
# run finds it; without it the state lives in memory for one Flower run.
STATE_DIR_KEY = "state-dir"


def parse_node_config(text: str) -> dict[str, object]:
    """Parse a ``--node-config`` value (``key=value`` pairs) as Flower does.

    Raises
    ------
    ValueError
        When Flower cannot parse it.

    """
    return dict(parse_config_args([text]))
