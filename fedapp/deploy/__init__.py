"""A deployed federation: Flower process flags, pre-flight checks and certificates."""
