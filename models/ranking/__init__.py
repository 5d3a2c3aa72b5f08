"""The ranking model of Singh et al. 2023 (section 3.3, 4): item representations x an MLP tower."""
