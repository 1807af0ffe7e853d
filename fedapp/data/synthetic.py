"""A synthetic customer-churn table for the demo and the tests.

Each institution serves a different customer mix (age, tenure, contract types,
price level), so splitting by ``institution`` gives a natural non-IID
federation; the churn mechanism itself is shared, so there is one model worth
learning together.

Three targets come with it: ``churned`` (binary), ``next_plan`` (the plan the
customer moves to next year: multiclass) and ``next_year_spend`` (what the
customer spends next year: regression). Each is an outcome, not something
known when predicting, so a run on one leaves the other two out
(:data:`TARGETS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "churned"
NEXT_PLAN = "next_plan"
NEXT_YEAR_SPEND = "next_year_spend"
# The table's outcomes: whichever is the target, the others are not features.
TARGETS = (TARGET, NEXT_PLAN, NEXT_YEAR_SPEND)
INSTITUTION = "institution"
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("card", "bank-transfer", "e-check", "mailed-check")
PLANS = ("basic", "standard", "premium")


def make_churn_table(
    rows: int = 6000,
    institutions: int = 3,
    seed: int = 42,
    churn_rate: float = 0.25,
    missing_rate: float = 0.02,
) -> pd.DataFrame:
    """Generate a churn table with an ``institution`` column.

    Parameters
    ----------
    rows : int
        Customers across all institutions.
    institutions : int
        Number of institutions; customers are spread unevenly among them.
    seed : int
        Seed of the generator: the same seed gives the same table.
    churn_rate : float
        Target share of churners overall (the intercept is calibrated to it).
    missing_rate : float
        Share of blanks in ``age`` and ``monthly_charges``, as in real tables.

    Returns
    -------
    pandas.DataFrame
        Numeric and categorical features, ``institution``, the 0/1 target
        ``churned`` and the other two targets (:data:`TARGETS`).

    """
    if rows < institutions:
        raise ValueError(f"rows ({rows}) must be at least institutions ({institutions})")
    rng = np.random.default_rng(seed)

    # Uneven institution sizes and per-institution customer mixes.
    sizes = rng.dirichlet(np.full(institutions, 4.0))
    inst = rng.choice(institutions, size=rows, p=sizes)
    inst[:institutions] = np.arange(institutions)  # every institution has customers
    age_mean = rng.uniform(38, 50, institutions)
    tenure_scale = rng.uniform(15, 35, institutions)
    price_level = rng.uniform(-8, 8, institutions)
    contract_mix = rng.dirichlet(np.full(len(CONTRACTS), 4.0), institutions)
    payment_mix = rng.dirichlet(np.full(len(PAYMENTS), 4.0), institutions)
    plan_mix = rng.dirichlet(np.full(len(PLANS), 4.0), institutions)

    age = np.clip(rng.normal(age_mean[inst], 12), 18, 90)
    tenure = np.clip(rng.exponential(tenure_scale[inst]), 0, 72).round()
    contract = _draw(rng, contract_mix[inst])
    payment = _draw(rng, payment_mix[inst])
    plan = _draw(rng, plan_mix[inst])
    monthly = np.clip(rng.normal(45 + 20 * plan + price_level[inst], 12), 10, 150).round(2)
    products = rng.integers(1, 5, rows)
    calls = rng.poisson(0.6 + 0.8 * (contract == 0), rows)
    balance = np.where(rng.random(rows) < 0.3, 0.0, rng.gamma(2.0, 30_000, rows))

    # One churn mechanism for everyone, with a few non-linear effects.
    logit = (
        -0.9 * np.log1p(tenure)
        + 1.1 * (contract == 0)
        - 0.8 * (contract == 2)
        + 0.5 * (payment == 2)
        + 0.45 * calls
        + 0.025 * (monthly - 60)
        + 0.9 * ((age - 45) / 15) ** 2
        - 0.6 * (products == 2)
        + 0.8 * (products >= 3)
        + 0.4 * (balance > 0) * (age > 50)
    )
    logit += rng.normal(0, 0.5, rows)
    intercept = _calibrate(logit, churn_rate)
    churned = (rng.random(rows) < _sigmoid(logit + intercept)).astype(np.int64)

    # Next year's plan: a shared mechanism too (price-sensitive customers move
    # down, long-tenured heavy users up), drawn after churn so that adding it
    # leaves every other column of a seed as it was.
    plan_logits = np.stack(
        [
            np.zeros(rows),
            1.2 * (plan == 1) + 0.02 * (tenure - 24) + 0.4 * (products >= 2),
            2.4 * (plan == 2)
            + 0.035 * (tenure - 24)
            + 0.6 * (products >= 3)
            - 0.03 * (monthly - 70),
        ],
        axis=1,
    ) + 1.8 * (np.arange(len(PLANS)) == plan[:, None])
    plan_logits += rng.gumbel(size=plan_logits.shape) * 0.8
    next_plan = plan_logits.argmax(axis=1)
    # Next year's spend: twelve months at the plan's price, more with products
    # and tenure, less for a churner (who leaves part-way through the year).
    spend = 12 * monthly * (1 + 0.15 * (products - 1)) * (1 + 0.004 * tenure)
    spend = spend * (1 - 0.35 * churned) * rng.lognormal(0.0, 0.15, rows)

    frame = pd.DataFrame(
        {
            "age": age.round(),
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "num_products": products,
            "support_calls": calls,
            "balance": balance.round(2),
            "contract": np.asarray(CONTRACTS, dtype=object)[contract],
            "payment_method": np.asarray(PAYMENTS, dtype=object)[payment],
            "plan": np.asarray(PLANS, dtype=object)[plan],
            INSTITUTION: [f"inst-{i}" for i in inst],
            TARGET: churned,
            NEXT_PLAN: np.asarray(PLANS, dtype=object)[next_plan],
            NEXT_YEAR_SPEND: spend.round(2),
        }
    )
    for column in ("age", "monthly_charges"):
        blanks = rng.random(rows) < missing_rate
        frame.loc[blanks, column] = np.nan
    return frame


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category index per row from per-row probabilities."""
    cumulative = probs.cumsum(axis=1)
    return (rng.random((len(probs), 1)) > cumulative).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate(logit: np.ndarray, rate: float) -> float:
    """Find the intercept whose mean churn probability equals ``rate``."""
    low, high = -20.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        if _sigmoid(logit + mid).mean() < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2
