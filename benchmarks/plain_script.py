"""Baseline: the same work as `conveyor run` written as a plain script.

Reads the CSV, drops the ID column, splits with the same seed, fits the same preprocessing
and the same LightGBM estimator with the same params, evaluates on the held-out rows.
No validation, versioning, tracking, plots or registry: that is Conveyor's overhead.

Usage: python -m benchmarks.plain_script data.csv target
"""

from __future__ import annotations

import sys
import time


def main(path: str, target: str) -> None:
    """Run the baseline and print its wall time."""
    started = time.perf_counter()
    import lightgbm as lgb
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from conveyor.training.models import default_model

    frame = pd.read_csv(path, engine="pyarrow")
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith("_id")])
    y = frame.pop(target)
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith("_date")])
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    x_train, x_test, y_train, y_test = train_test_split(
        frame, y, test_size=0.2, random_state=42, stratify=y
    )
    preprocess = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="__missing__"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    )
    params = default_model("binary").params
    model = Pipeline([("preprocess", preprocess), ("model", lgb.LGBMClassifier(**params))])
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, list(model.classes_).index("yes")]
    auc = roc_auc_score(y_test == "yes", proba)
    print(f"plain script: {time.perf_counter() - started:.2f}s roc_auc={auc:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
