"""The value cleaning that travels with every registered Conveyor model.

Self-contained (numpy, pandas and scikit-learn only, nothing from ``conveyor``): each
registered model ships this package as MLflow code, so ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` clean raw rows as training did where Conveyor is not installed.

- :mod:`conveyor_cleaning.values`: the value rules (one value, one column);
- :mod:`conveyor_cleaning.cleaner`: ``ValueCleaner``, the pipeline step applying them
  (imports scikit-learn, so it is not imported here).
"""
