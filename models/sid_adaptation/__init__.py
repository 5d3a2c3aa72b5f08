"""SID adaptation (Singh et al. 2023, section 3.3): Semantic IDs -> pieces, rows of one embedding table."""
