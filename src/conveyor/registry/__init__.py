"""MLflow adapter: tracking, model registry, promotion gates, lineage."""
