"""Stage builders: each returns the TFX nodes of one stage of the SID refresh or daily pipeline, so the
two pipelines in pipeline/pipeline.py are assembled from the same pieces."""
