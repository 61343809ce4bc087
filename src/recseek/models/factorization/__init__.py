"""Factorization models: rating prediction (SGD, ALS, coordinate descent, Bayesian, FM, local
low-rank), implicit-feedback ALS (WRMF, iALS++, eALS), FISM, PRankD, IRRG and PureSVD."""
