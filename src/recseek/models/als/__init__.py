"""ALS-family implicit-feedback models: WRMF, iALS++, eALS and RankALS."""
