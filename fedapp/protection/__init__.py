"""Pure NumPy, no Flower: DP accounting, attacks, anomaly signals, SecAgg+ bounds."""
