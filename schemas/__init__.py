"""Curated schemas of the pipeline's data (tensorflow_metadata text format), packaged with the code."""

import os

_HERE = os.path.dirname(__file__)
INTERACTIONS_SCHEMA = os.path.join(_HERE, "interactions", "schema.pbtxt")
ITEMS_SCHEMA = os.path.join(_HERE, "items", "schema.pbtxt")
