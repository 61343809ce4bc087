"""Rating-prediction factorisation models (SGD, ALS, coordinate descent, Bayesian, FM, local)."""
