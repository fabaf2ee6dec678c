"""Training pipeline: model factory, preprocessing, training, evaluation, plots."""
