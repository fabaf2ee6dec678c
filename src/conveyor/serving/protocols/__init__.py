"""Wire protocols the server speaks: MLflow's scoring protocol and the Open Inference Protocol v2."""
