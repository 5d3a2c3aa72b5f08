"""SpanExampleGen: span-by-span ingestion with a FeatureState carried from run to run."""
