"""Shared artifact formats and conventions (item embeddings, Semantic IDs, SID vocabularies, span
numbering, input errors): the low-level package that components/, models/, serving/ and pipeline/
all import. It imports none of them."""
