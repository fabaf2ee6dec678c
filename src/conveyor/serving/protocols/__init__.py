"""Wire protocols: MLflow's scoring protocol and the Open Inference Protocol v2."""
