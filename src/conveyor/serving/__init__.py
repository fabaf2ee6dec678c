"""Model serving: ``conveyor serve`` (MLflow and Open Inference protocols, ONNX Runtime fast
path, batching, routing, zero-downtime swaps)."""
