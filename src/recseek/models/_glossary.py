"""The hyperparameter glossary: one name per meaning, one meaning per name.

Every constructor argument of a registered model is either a glossary name (``GLOSSARY``:
the same meaning in every model that has it) or a name declared for that model alone
(``MODEL_SPECIFIC``). Paper symbols (``PAPER_SYMBOLS``: ``alpha``, ``beta``, ``rho`` ...)
keep the letter of the model's paper, so they are always model-specific and defined per
model. ``SYNONYMS`` lists spellings that are refused everywhere in favour of a glossary
name; ``RENAMED`` lists the names models used before this glossary, still accepted for one
release with a ``DeprecationWarning``. ``docs/conventions.md`` is generated from this module
by :func:`render_conventions` (see :data:`REGENERATE`) and a test checks it is current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The shell command that rewrites docs/conventions.md.
REGENERATE = ("python -c \"from recseek.models._glossary import render_conventions as r; print(r(), end='')\""
              " > docs/conventions.md")

#: Names with one meaning across the whole catalogue.
GLOSSARY: dict[str, str] = {
    "factors": "Latent dimensions: the length of each user and item vector.",
    "epochs": "Passes of the training algorithm over the data (SGD passes, ALS or coordinate-descent "
              "sweeps, Gibbs sweeps, EM iterations).",
    "learning_rate": "Step size of the gradient updates (AdaGrad's base step for AdaGrad models).",
    "reg": "Weight of the L2 penalty on the learned weights (factors, or item-item weights); "
           "where reg_user, reg_item or reg_bias exist they replace it for those parameters. "
           "The exact form (a factor 1/2, frequency scaling) is in each model's docstring.",
    "reg_user": "Weight of the L2 penalty on the per-user parameters (factors, or the user bias or "
                "weight in models whose users have no factors).",
    "reg_item": "Weight of the L2 penalty on the per-item parameters (factors, or the item bias or "
                "weight in models whose items have no factors).",
    "reg_bias": "Weight of the L2 penalty on the bias terms (None, where a model allows it: the value "
                "of reg).",
    "reg_l1": "Weight of the L1 (sparsity) penalty, next to reg as the L2 part of an elastic net.",
    "init_std": "Standard deviation of the zero-mean normal distribution the initial factors are "
                "drawn from.",
    "neighbors": "How many most-similar users or items (or strongest rules) each user or item keeps; "
                 "None, where allowed, keeps all.",
    "shrinkage": "Shrinks similarities supported by few co-occurrences towards 0: added to the "
                 "similarity's denominator, or Pearson's factor (n - 1) / (n - 1 + shrinkage).",
    "similarity": "The similarity function between users or items (cosine, pearson, jaccard, ...).",
    "weighting": "Re-weighting of the interaction matrix before similarities are computed: 'none', "
                 "'tfidf' or 'bm25'.",
    "min_k": "Fewest neighbours that must contribute to a neighbourhood prediction; with fewer, the "
             "baseline alone is predicted.",
    "binary": "Treat every stored interaction as 1 (ignore its rating or count).",
    "negatives": "Unobserved items sampled per observed pair in each training pass.",
    "sampling": "How a training positive is drawn: 'interaction' (uniformly over interactions) or "
                "'user' (a user uniformly, then one of the user's items).",
    "samples_per_epoch": "Training samples drawn per epoch (None: the number of training interactions).",
    "features": "Side-data columns used as features: 'auto' (every usable column), 'none' (ids only) "
                "or a list of column names.",
    "clusters": "Number of clusters (mixture components).",
    "batch_size": "Training examples per gradient step.",
    "device": "Where the model's tensors live and train ('cpu', 'cuda', ...).",
    "seed": "Seed of every random draw in training; a fixed seed reproduces results (None: fresh "
            "randomness at each fit).",
    "verbose": "Show a progress bar while training.",
}

#: Single letters and symbols taken from a model's paper; always defined per model.
PAPER_SYMBOLS: frozenset[str] = frozenset({"alpha", "beta", "beta0", "gamma", "rho", "sigma"})

#: Names that belong to one model only, with their meaning in that model.
MODEL_SPECIFIC: dict[str, dict[str, str]] = {
    "AoBPR": {
        "item_rank_scale": "Scale of the geometric law over ranks, as a share of the catalogue: "
                           "p(r) ~ exp(-r / (item_rank_scale * n_items)).",
    },
    "AspectModelRanking": {
        "fold_in_steps": "Iterations that fold a new user's data into the user side, the item side fixed.",
    },
    "AspectModelRating": {
        "min_sigma": "Floor of the standard deviation of each learned rating Gaussian.",
        "fold_in_steps": "Iterations that fold a new user's data into the user side, the item side fixed.",
    },
    "AutoRec": {
        "hidden_units": "Width of the hidden layer of the autoencoder (MultVAE: of the encoder and of the decoder each).",
    },
    "BPMF": {
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "samples": "Posterior draws averaged for prediction.",
        "precision": "Observation precision (1 / noise variance of the ratings).",
        "beta0": "Prior strength of the Normal-Wishart hyper-mean.",
        "wishart_scale": "Scale of the Wishart prior W0 = wishart_scale * I.",
    },
    "BPoissMF": {
        "a": "Shape of the Gamma prior of each user preference theta_uk.",
        "a_activity": "a', the shape of the Gamma prior of each user's activity xi_u.",
        "b_activity": "b', the mean of each user's activity prior (rate a'/b').",
        "c": "Shape of the Gamma prior of each item attribute beta_ik.",
        "c_popularity": "c', the shape of the Gamma prior of each item's popularity eta_i.",
        "d_popularity": "d', the mean of each item's popularity prior (rate c'/d').",
        "fold_in_steps": "Iterations that fold a new user's data into the user side, the item side fixed.",
    },
    "BPR": {
        "item_bias": "Learn an item bias (regularised by reg_bias).",
    },
    **{m: {
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "sample_lag": "Sweeps between two collected samples after the burn-in.",
        "alpha": "Symmetric Dirichlet prior of each user's community weights.",
        "beta": "Symmetric Dirichlet prior of each community's item distribution (None: 1 / n_items).",
        "gamma": "Symmetric Dirichlet prior of each (community, item) rating distribution.",
        "learn_priors": "Learn the Dirichlet priors by Minka's fixed-point update after every sweep.",
    } for m in ("BUCMRating", "BUCMRanking")},
    **{m: {
        "user_clusters": "K, the number of user clusters (communities).",
        "item_clusters": "L, the number of item clusters (categories).",
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "sample_lag": "Sweeps between two collected samples after the burn-in.",
        "alpha": "Symmetric Dirichlet prior of each user's community weights.",
        "beta": "Symmetric Dirichlet prior of each community's distribution over item categories.",
        "gamma": "Symmetric Dirichlet prior of each co-cluster's rating distribution.",
        "sigma": "Symmetric Dirichlet prior of each co-cluster's item distribution (None: 1 / n_items).",
    } for m in ("BHFreeRating", "BHFreeRanking")},
    "CDAE": {
        "hidden_units": "Width of the hidden layer of the autoencoder (MultVAE: of the encoder and of the decoder each).",
        "corruption": "Probability that an input entry is dropped (the survivors are scaled by 1 / (1 - corruption)).",
        "activation": "Activation of the hidden layer: 'sigmoid', 'relu', 'tanh' or 'identity'.",
        "loss": "'logistic' (log loss on the output logits) or 'square' (squared error, identity output).",
        "patience": "Epochs without a better validation NDCG@10 before training stops, the best weights kept; a tenth of each user's training items is held out for it (None: no early stopping).",
    },
    "DeepCross": {
        "mlp_layers": "Widths of the network's feed-forward layers, as a list (how the model stacks them is in its docstring).",
        "dropout": "Dropout rate of the network during training (where it is applied is in the model's docstring).",
        "patience": "Epochs without a better validation NDCG@10 before training stops, the best weights kept; a tenth of each user's training items is held out for it (None: no early stopping).",
    },
    "DeepFM": {
        "mlp_layers": "Widths of the network's feed-forward layers, as a list (how the model stacks them is in its docstring).",
        "dropout": "Dropout rate of the network during training (where it is applied is in the model's docstring).",
        "patience": "Epochs without a better validation NDCG@10 before training stops, the best weights kept; a tenth of each user's training items is held out for it (None: no early stopping).",
    },
    "LambdaFMDynamic": {
        "rho": "Spread of the rank law over the ranked draws, as a share of negatives: p(r) ~ exp(-r / (rho * negatives)).",
    },
    "LambdaFMStatic": {
        "rho": "Spread of the popularity-rank law as a share of the catalogue: p(r) ~ exp(-(r + 1) / (rho * n_items)).",
    },
    "LambdaFMWeight": {
        "margin": "Hinge margin a negative must violate: x_uj > x_ui - margin.",
        "trials": "Most uniform draws per training pair while looking for a violating negative.",
    },
    "LDCC": {
        "user_clusters": "K, the number of user clusters (communities).",
        "item_clusters": "L, the number of item clusters (categories).",
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "sample_lag": "Sweeps between two collected samples after the burn-in.",
        "alpha_user": "Symmetric Dirichlet prior of each user's cluster mixture (None: 1 / user_clusters).",
        "alpha_item": "Symmetric Dirichlet prior of each item's cluster mixture (None: 1 / item_clusters).",
        "beta": "Symmetric Dirichlet prior of each cluster pair's rating distribution (None: 1 / levels).",
    },
    "LightGCN": {
        "graph_layers": "Propagation layers K over the normalised user-item graph (0: plain matrix factorisation).",
        "patience": "Epochs without a better validation NDCG@10 before training stops, the best weights kept; a tenth of each user's training items is held out for it (None: no early stopping).",
    },
    "MultVAE": {
        "hidden_units": "Width of the hidden layer of the autoencoder (MultVAE: of the encoder and of the decoder each).",
        "dropout": "Dropout rate of the network during training (where it is applied is in the model's docstring).",
        "beta": "Cap of the annealed weight of the KL term.",
        "anneal_steps": "Mini-batch steps over which the KL weight grows linearly from 0 to beta.",
        "noise_std": "Scale of the reparameterisation noise of the latent sample while training (1: sampling the posterior; 0: deterministic).",
        "patience": "Epochs without a better validation NDCG@10 before training stops, the best weights kept; a tenth of each user's training items is held out for it (None: no early stopping).",
    },
    "NeuMF": {
        "mlp_layers": "Widths of the network's feed-forward layers, as a list (how the model stacks them is in its docstring).",
        "dropout": "Dropout rate of the network during training (where it is applied is in the model's docstring).",
        "patience": "Epochs without a better validation NDCG@10 before training stops, the best weights kept; a tenth of each user's training items is held out for it (None: no early stopping).",
    },
    "RBM": {
        "momentum": "Momentum of the contrastive-divergence updates (share of the previous step kept).",
        "cd_steps": "T, alternating Gibbs steps of contrastive divergence (CD-T).",
    },
    "SASRec": {
        "blocks": "Self-attention blocks stacked.",
        "heads": "Attention heads per block (factors must be a multiple).",
        "max_length": "Longest history read: the most recent max_length items of a user.",
        "dropout": "Dropout rate of the network during training (where it is applied is in the model's docstring).",
    },
    "URP": {
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "sample_lag": "Sweeps between two collected samples after the burn-in.",
        "alpha": "Symmetric Dirichlet prior of each user's attitude weights (None: 1 / factors).",
        "beta": "Symmetric Dirichlet prior of each (attitude, item) rating distribution (None: 1 / factors).",
        "learn_priors": "Learn the Dirichlet priors by Minka's fixed-point update after every sweep.",
    },
    "CCD": {
        "inner": "Coordinate updates per latent dimension and sweep.",
    },
    "ConstantGuess": {
        "constant": "The rating predicted for every pair (None: the middle of the training rating range).",
    },
    "EALS": {
        "alpha": "Observed-pair weight slope: w = 1 + alpha * r.",
        "missing_weight": "c0, the total weight of the missing data under popularity weighting.",
        "popularity_exponent": "How much more popular items weigh as negatives (0: uniform c0 / n_items).",
        "missing_weighting": "Missing-data weighting scheme: 'popularity' (c_i from item popularity) or "
                             "'uniform' (c_i = 1, the WRMF objective).",
    },
    "EASE": {
        "max_items": "Largest catalogue accepted (the dense item-item matrix needs 4 n_items^2 bytes).",
    },
    "EFMRanking": {
        "explicit_factors": "r, the explicit latent dimensions shared by users, items and review aspects (the "
                            "rest of factors are hidden dimensions).",
        "lambda_x": "Weight of the user-attention reconstruction ||U1 V' - X||^2.",
        "lambda_y": "Weight of the item-quality reconstruction ||U2 V' - Y||^2.",
        "lambda_u": "L2 weight of the explicit user and item factors U1, U2.",
        "lambda_h": "L2 weight of the hidden user and item factors H1, H2.",
        "lambda_v": "L2 weight of the aspect factors V.",
        "missing": "What the reconstruction norms run over: 'zero' (every entry, missing ones counting as 0, "
                   "the paper) or 'ignore' (observed entries only, JStarCraft RNS).",
        "alpha": "Weight of the aspect match against the rating prediction in the ranking score.",
        "top_aspects": "k, how many of the user's most cared-about aspects enter the ranking score.",
    },
    "EFMRating": {
        "explicit_factors": "r, the explicit latent dimensions shared by users, items and review aspects (the "
                            "rest of factors are hidden dimensions).",
        "lambda_x": "Weight of the user-attention reconstruction ||U1 V' - X||^2.",
        "lambda_y": "Weight of the item-quality reconstruction ||U2 V' - Y||^2.",
        "lambda_u": "L2 weight of the explicit user and item factors U1, U2.",
        "lambda_h": "L2 weight of the hidden user and item factors H1, H2.",
        "lambda_v": "L2 weight of the aspect factors V.",
        "missing": "What the reconstruction norms run over: 'zero' (every entry, missing ones counting as 0, "
                   "the paper) or 'ignore' (observed entries only, JStarCraft RNS).",
    },
    "HFT": {
        "sgd_passes": "SGD passes over the ratings between two Gibbs sweeps over the review topics.",
        "kappa": "Sharpness of the softmax that turns a user's factors into topic proportions (fixed).",
    },
    "TopicMFAT": {
        "review_weight": "lambda, the weight of the review reconstruction against the rating error.",
        "kappa_init": "Initial value of kappa, the scale of the factors inside the topic softmax (learned).",
    },
    "TopicMFMT": {
        "review_weight": "lambda, the weight of the review reconstruction against the rating error.",
        "kappa_init": "Initial value of kappa, the scale of the factors inside the topic softmax (learned).",
    },
    "FCF": {
        "rounds": "Communication rounds of the federation (server aggregations).",
        "clients_per_round": "Clients sampled per round: a share of all clients (at most 1) or a count (above 1).",
        "privacy": "Local differential privacy of every uploaded row: 'none', 'laplace' or 'gaussian'.",
        "epsilon": "Privacy budget per uploaded row and round (Laplace or Gaussian mechanism).",
        "delta": "Failure probability of the Gaussian mechanism's (epsilon, delta) guarantee.",
        "clip": "Norm bound of an uploaded row before noise (L1 for Laplace, L2 for Gaussian).",
        "fake_items": "Items a client never interacted with that it also trains on and uploads each round.",
        "alpha": "Confidence of an observed interaction: c = 1 + alpha.",
    },
    "FedAvg": {
        "rounds": "Communication rounds of the federation (server aggregations).",
        "local_epochs": "Passes of a client over its own data per round.",
        "clients_per_round": "Clients sampled per round: a share of all clients (at most 1) or a count (above 1).",
        "privacy": "Local differential privacy of every uploaded row: 'none', 'laplace' or 'gaussian'.",
        "epsilon": "Privacy budget per uploaded row and round (Laplace or Gaussian mechanism).",
        "delta": "Failure probability of the Gaussian mechanism's (epsilon, delta) guarantee.",
        "clip": "Norm bound of an uploaded row before noise (L1 for Laplace, L2 for Gaussian).",
        "fake_items": "Items a client never interacted with that it also trains on and uploads each round.",
        "threshold": "Local early stop: relative change of the running mean loss between local epochs.",
        "client_weighting": "Weights of the clients' tables in the average: 'samples' (local sample counts) or 'uniform'.",
        "backbone": "Score function of the clients: 'pmf' (dot product of user vector and item row) or 'ncf' (an MLP on both).",
        "tower_layers": "Hidden layers of the NCF backbone's MLP head, each half as wide as the one before (0: one affine layer).",
        "mlp_learning_rate": "Step of the NCF backbone's MLP head.",
        "mlp_reg": "L2 weight decay of the NCF backbone's MLP head.",
    },
    "FedCA": {
        "rounds": "Communication rounds of the federation (server aggregations).",
        "local_epochs": "Passes of a client over its own data per round.",
        "clients_per_round": "Clients sampled per round: a share of all clients (at most 1) or a count (above 1).",
        "privacy": "Local differential privacy of every uploaded row: 'none', 'laplace' or 'gaussian'.",
        "epsilon": "Privacy budget per uploaded row and round (Laplace or Gaussian mechanism).",
        "delta": "Failure probability of the Gaussian mechanism's (epsilon, delta) guarantee.",
        "clip": "Norm bound of an uploaded row before noise (L1 for Laplace, L2 for Gaussian).",
        "fake_items": "Items a client never interacted with that it also trains on and uploads each round.",
        "threshold": "Local early stop: relative change of the running mean loss between local epochs.",
        "alpha": "Weight of complementarity (principal-angle cosine of the clients' item subspaces) in the aggregation weights.",
        "beta": "Weight of similarity (of the clients' item tables) in the aggregation weights.",
        "aggregated_share": "Share of a round's clients whose tables are aggregated.",
        "interpolation": "Weight of a client's own item table against its aggregate.",
        "principal_k": "Dimension of each client's principal item subspace.",
        "backbone": "Score function of the clients: 'pmf' (dot product of user vector and item row) or 'ncf' (an MLP on both).",
        "tower_layers": "Hidden layers of the NCF backbone's MLP head, each half as wide as the one before (0: one affine layer).",
        "mlp_learning_rate": "Step of the NCF backbone's MLP head.",
        "mlp_reg": "L2 weight decay of the NCF backbone's MLP head.",
    },
    "FISMAUC": {
        "alpha": "Exponent of the neighbourhood normalisation n_u^-alpha (0: none, 1: mean).",
    },
    "FISMRMSE": {
        "alpha": "Exponent of the neighbourhood normalisation n_u^-alpha (0: none, 1: mean).",
    },
    "GBPR": {
        "rho": "Weight of the group preference against the user's own: "
               "rho * group mean + (1 - rho) * individual.",
        "group_size": "Users in a group: the user plus group_size - 1 others who chose the item.",
    },
    "HybridText": {
        "base": "Registry name of the collaborative factor model (scoring by u . v) the model is built on.",
        "base_params": "Hyperparameters of the base model (a table; seed and verbose default to this model's).",
        "blend_count": "Training interactions at which an item's factor and text scores weigh the same: "
                       "w = n / (n + blend_count).",
        "alpha": "Fold-in confidence 1 + alpha of an observed item (None: the base model's alpha, else 1).",
        "foldin_reg": "L2 penalty of the fold-in solve for new users (None: the base model's reg, else 1).",
        "text_columns": "item_data columns forming the item text (None: title, year, genres, tags, description, "
                        "text where present).",
        "encoder": "Text embedding: 'sentence' (a sentence-transformers model), 'hashing' or 'tfidf' (built in).",
        "text_model": "Sentence-transformers folder or hub name for encoder='sentence' (None: the offline "
                      "all-MiniLM-L6-v2).",
    },
    "GPLSA": {
        "smooth_weight": "Pseudo-ratings at the global mean and variance added to each user's rating statistics "
                         "before the ratings are normalised per user.",
        "beta": "Tempered-EM exponent of the E-step responsibilities (1: plain EM).",
        "prior_weight": "Pseudo-ratings at the item's overall mean and variance in each community's Gaussian "
                        "of that item.",
        "min_sigma": "Floor of the standard deviation of each learned rating Gaussian.",
        "fold_in_steps": "Iterations that fold a new user's data into the user side, the item side fixed.",
    },
    "HMM": {
        "states": "Number of hidden states of each user's Markov chain.",
        "prior_initial": "Dirichlet pseudo-count of each initial state probability.",
        "prior_transition": "Dirichlet pseudo-count of each state transition probability.",
        "prior_emission": "Dirichlet pseudo-count of each item in each state's item distribution.",
        "period_length": "Length of a time period in timestamp units (None: a tenth of the data's time span).",
    },
    "IALSPlusPlus": {
        "unobserved_weight": "alpha0, the weight of the all-pairs term pulling every score to 0.",
        "reg_exponent": "nu: 0 = plain L2, 1 = regularisation proportional to the row's weight mass.",
        "block_size": "Latent dimensions solved together in one block.",
        "init_scale": "Initial factors are normal with standard deviation init_scale / sqrt(factors).",
    },
    "IRRG": {
        "alpha": "Weight of the item-relationship penalties against the rating loss.",
        "reliability": "Co-rater count at which a rule's confidence is halved: c / (c + reliability).",
        "init_range": "Width of the interval the initial factors are drawn uniformly from (JStarCraft's start; the "
                      "interval is in the model's docstring).",
    },
    "ItemBigram": {
        "alpha": "Initial symmetric Dirichlet prior of each user's topic mixture.",
        "beta": "Symmetric Dirichlet prior of each (topic, previous item) distribution over the next item.",
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "sample_lag": "Sweeps between two collected samples after the burn-in.",
        "learn_priors": "Learn the Dirichlet priors by Minka's fixed-point update after every sweep.",
    },
    "ItemKNNRanking": {
        "alpha": "Exponent of the asymmetric cosine: dot / (|a|^(2 alpha) |b|^(2 (1 - alpha))).",
    },
    "ItemTextKNN": {
        "variant": "How the user's item text embeddings score an item: 'centroid' (cosine with their sum) or "
                   "'max' (largest similarity to any of them).",
        "text_columns": "item_data columns forming the item text (None: title, year, genres, tags, description, "
                        "text where present).",
        "encoder": "Text embedding: 'sentence' (a sentence-transformers model), 'hashing' or 'tfidf' (built in).",
        "text_model": "Sentence-transformers folder or hub name for encoder='sentence' (None: the offline "
                      "all-MiniLM-L6-v2).",
    },
    "UserKNNRanking": {
        "alpha": "Exponent of the asymmetric cosine: dot / (|a|^(2 alpha) |b|^(2 (1 - alpha))).",
    },
    "KNNBaseline": {
        "baseline_epochs": "Alternating least-squares rounds fitting the user and item baselines.",
        "user_based": "Neighbours are users (True) or items (False).",
        "min_support": "Fewest common raters for a similarity to be kept.",
    },
    "LDA": {
        "alpha": "Initial symmetric Dirichlet prior of each user's topic mixture.",
        "beta": "Initial symmetric Dirichlet prior of each topic's distribution over items.",
        "burn_in": "Gibbs sweeps discarded before posterior samples are collected (less than epochs).",
        "sample_lag": "Sweeps between two collected samples after the burn-in.",
        "learn_priors": "Learn the Dirichlet priors by Minka's fixed-point update after every sweep.",
        "fold_in_steps": "Iterations that fold a new user's data into the user side, the item side fixed.",
    },
    "LLORMA": {
        "anchors": "Number of anchor points (local models).",
        "width": "Bandwidth of the Epanechnikov kernel on the angular distance (in [0, 2]).",
        "global_factors": "Latent dimensions of the global factorisation that defines the distances.",
        "global_epochs": "SGD passes of the global factorisation.",
        "global_learning_rate": "SGD step of the global factorisation.",
        "global_reg": "L2 penalty weight of the global factors.",
    },
    "PersonalityDiagnosis": {
        "sigma": "Standard deviation of the Gaussian rating noise.",
    },
    "PLSA": {
        "fold_in_steps": "Iterations that fold a new user's data into the user side, the item side fixed.",
    },
    "PFedRec": {
        "rounds": "Communication rounds of the federation (server aggregations).",
        "local_epochs": "Passes of a client over its own data per round.",
        "clients_per_round": "Clients sampled per round: a share of all clients (at most 1) or a count (above 1).",
        "privacy": "Local differential privacy of every uploaded row: 'none', 'laplace' or 'gaussian'.",
        "epsilon": "Privacy budget per uploaded row and round (Laplace or Gaussian mechanism).",
        "delta": "Failure probability of the Gaussian mechanism's (epsilon, delta) guarantee.",
        "clip": "Norm bound of an uploaded row before noise (L1 for Laplace, L2 for Gaussian).",
        "fake_items": "Items a client never interacted with that it also trains on and uploads each round.",
        "eta": "Item step multiplier: the item rows' SGD step is learning_rate * n_items * eta.",
        "backbone": "Score function of the clients: 'pmf' (dot product of user vector and item row) or 'ncf' (an MLP on both).",
        "tower_layers": "Hidden layers of the NCF backbone's MLP head, each half as wide as the one before (0: one affine layer).",
    },
    "PRankD": {
        "sim_filter": "Steepness of the dissimilarity margin d_ij = sqrt(1 - tanh(sim_filter * cos(i, j))).",
    },
    "RankALS": {
        "support_weight": "Weight the items j of the pairwise loss by their popularity.",
    },
    "RankCD": {
        "alpha": "Confidence slope: an observed pair weighs 1 + alpha (every other pair 1).",
    },
    "RankGeoFM": {
        "margin": "Hinge margin a negative must violate: x_uj > x_ui - margin.",
        "max_trials": "Negatives drawn per positive before giving up on a violation.",
        "radius": "C, the largest norm allowed to a user or item factor vector (norms are bounded, not penalised).",
        "alpha": "The share of radius allowed to the geographical user factors (balance of geography against "
                 "preference).",
    },
    "RankVFCD": {
        "alpha": "Confidence slope: an observed user-item or related item-item pair weighs 1 + alpha.",
        "beta": "Weight of the item-item relation (functional) factorisation.",
        "gamma": "Weight tying each item factor to its feature projection E^T f_i.",
        "reg_feature": "Weight of the L2 penalty on the parameters that map item features into the factor space (the "
                       "model's docstring lists them).",
    },
    "RP3beta": {
        "alpha": "Exponent of the transition probabilities P(u | i)^alpha P(j | u)^alpha.",
        "beta": "Exponent of the popularity penalty 1 / pop_j^beta.",
        "normalize": "Re-normalise each kept row of the item-item matrix to sum to 1.",
    },
    "RSTE": {
        "alpha": "Weight of the user's own taste in the trust ensemble (1 - alpha: the trusted users').",
        "init_range": "Width of the interval the initial factors are drawn uniformly from (JStarCraft's start; the "
                      "interval is in the model's docstring).",
    },
    "SLIM": {
        "tol": "Coordinate descent stops when the largest change is below tol times the largest weight.",
        "positive": "Constrain the item-item weights to be non-negative.",
    },
    "SocialMF": {
        "reg_social": "Weight of the social (trust) term of the objective; the term is in the model's docstring.",
        "init_range": "Width of the interval the initial factors are drawn uniformly from (JStarCraft's start; the "
                      "interval is in the model's docstring).",
    },
    "SoRec": {
        "reg_social": "Weight of the social (trust) term of the objective; the term is in the model's docstring.",
        "reg_trustee": "Weight of the L2 penalty on the trustee factors Z.",
        "init_range": "Width of the interval the initial factors are drawn uniformly from (JStarCraft's start; the "
                      "interval is in the model's docstring).",
    },
    "SoReg": {
        "beta": "Weight of the social regularisation sum sim(u, f) |u_u - u_f|^2.",
        "init_range": "Width of the interval the initial factors are drawn uniformly from (JStarCraft's start; the "
                      "interval is in the model's docstring).",
    },
    "SVDPlusPlus": {
        "reg_implicit": "Weight of the L2 penalty on the implicit-feedback item factors y_j.",
    },
    "TextToCF": {
        "base": "Registry name of the collaborative factor model (scoring by u . v) the model is built on.",
        "base_params": "Hyperparameters of the base model (a table; seed and verbose default to this model's).",
        "mapping": "The text-embedding to item-factor map: 'ridge' (closed form) or 'mlp' (one ReLU hidden layer, "
                   "Adam).",
        "hidden": "Hidden units of the MLP map.",
        "min_count": "Fewest training interactions of an item that keeps its own factors and trains the map; "
                     "items with fewer get mapped factors.",
        "calibration": "How mapped (cold) items' scores are put on the warm items' scale (a scale and shift fitted "
                       "on pseudo-cold items carved from the training data): 'scores' (the base model's own scores), "
                       "'relevance' (Platt fits of relevance) or 'none'.",
        "alpha": "Fold-in confidence 1 + alpha of an observed item (None: the base model's alpha, else 1).",
        "foldin_reg": "L2 penalty of the fold-in solve for new users (None: the base model's reg, else 1).",
        "text_columns": "item_data columns forming the item text (None: title, year, genres, tags, description, "
                        "text where present).",
        "encoder": "Text embedding: 'sentence' (a sentence-transformers model), 'hashing' or 'tfidf' (built in).",
        "text_model": "Sentence-transformers folder or hub name for encoder='sentence' (None: the offline "
                      "all-MiniLM-L6-v2).",
    },
    "TimeSVD": {
        "beta": "Exponent of the time deviation dev_u(t) = sign(t - t_u) |t - t_u|^beta.",
        "bins": "Equal time spans of the item bias b_(i,Bin(t)).",
        "day_length": "Timestamp units per day (86400 for Unix seconds).",
    },
    "TrustMF": {
        "reg_social": "Weight of the social (trust) term of the objective; the term is in the model's docstring.",
        "mode": "Which view predicts: 'both' (their synthesis), 'truster' or 'trustee'.",
        "init_range": "Width of the interval the initial factors are drawn uniformly from (JStarCraft's start; the "
                      "interval is in the model's docstring).",
    },
    "TrustSVD": {
        "reg_social": "Weight of the social (trust) term of the objective; the term is in the model's docstring.",
    },
    "VBPR": {
        "feature_factors": "K': length of the user feature-preference vector theta_u and of the projected "
                           "item features E^T f_i.",
        "reg_feature": "Weight of the L2 penalty on the parameters that map item features into the factor space (the "
                       "model's docstring lists them).",
    },
    "WARPMF": {
        "margin": "Hinge margin a negative must violate: x_uj > x_ui - margin.",
        "max_trials": "Negatives drawn per positive before giving up on a violation.",
    },
    "WRMF": {
        "alpha": "Confidence slope of an observed pair: c = 1 + alpha * r.",
        "cg_steps": "Conjugate-gradient steps per row and half-step (0: exact Cholesky solve).",
    },
}

#: Spellings refused everywhere, with the glossary name to use instead.
SYNONYMS: dict[str, str] = {
    "n_factors": "factors", "k_factors": "factors", "latent_dim": "factors", "embedding_size": "factors",
    "dim": "factors", "rank": "factors",
    "n_epochs": "epochs", "iterations": "epochs", "n_iter": "epochs", "max_iter": "epochs", "iters": "epochs",
    "lr": "learning_rate", "learn_rate": "learning_rate", "step_size": "learning_rate",
    "regularization": "reg", "lambda_": "reg", "lam": "reg", "l2": "reg", "l2_reg": "reg", "weight_decay": "reg",
    "reg_u": "reg_user", "user_reg": "reg_user", "reg_i": "reg_item", "item_reg": "reg_item",
    "bias_reg": "reg_bias", "reg_b": "reg_bias", "l1": "reg_l1", "l1_reg": "reg_l1",
    "init_stdev": "init_std", "init_sigma": "init_std", "std": "init_std",
    "k": "neighbors", "n_neighbors": "neighbors", "knn": "neighbors", "nn": "neighbors",
    "shrink": "shrinkage", "sim": "similarity",
    "n_negatives": "negatives", "num_negatives": "negatives", "neg_ratio": "negatives",
    "n_clusters": "clusters", "batch": "batch_size", "use_gpu": "device",
    "random_state": "seed", "random_seed": "seed", "rng": "seed", "verbosity": "verbose",
}


@dataclass(frozen=True)
class Renamed:
    """A hyperparameter renamed to the glossary; the old name works for one release."""

    old: str
    new: str
    #: The models it applies to (empty: every model that has ``new``).
    models: tuple[str, ...] = ()

    def applies_to(self, model: str) -> bool:
        return not self.models or model in self.models


#: Names in use before the glossary, accepted with a ``DeprecationWarning``.
RENAMED: tuple[Renamed, ...] = (
    Renamed("bias_reg", "reg_bias"),
    Renamed("init_scale", "init_std", ("EALS", "RankALS", "WRMF")),
    Renamed("rho", "negatives", ("FISMAUC", "FISMRMSE")),
    Renamed("weighting", "missing_weighting", ("EALS",)),
    Renamed("l1_reg", "reg_l1", ("SLIM",)),
    Renamed("l2_reg", "reg", ("SLIM",)),
    Renamed("implicit_reg", "reg_implicit", ("SVDPlusPlus",)),
)


def renamed_for(model: str, valid: set[str] | list[str]) -> dict[str, str]:
    """Old name -> glossary name for the renames that apply to ``model`` (whose names are ``valid``)."""
    names = set(valid)
    return {r.old: r.new for r in RENAMED if r.applies_to(model) and r.new in names and r.old not in names}


def meaning(model: str, name: str) -> str | None:
    """The definition of hyperparameter ``name`` in ``model``, or None when it is not declared."""
    specific = MODEL_SPECIFIC.get(model, {})
    return specific.get(name, GLOSSARY.get(name))


def naming_problems(cls: Any) -> list[str]:
    """Sentences naming each hyperparameter of model class ``cls`` that breaks the glossary."""
    out = []
    names = cls.param_names()
    old = {r.old: r.new for r in RENAMED if cls.name in r.models}
    specific = MODEL_SPECIFIC.get(cls.name, {})
    for n in names:
        if n in SYNONYMS:
            out.append(f"{cls.name}: {n!r} is a synonym of the glossary name {SYNONYMS[n]!r}")
        elif n in old:
            out.append(f"{cls.name}: {n!r} was renamed to {old[n]!r}")
        elif n in specific and n in GLOSSARY:
            out.append(f"{cls.name}: {n!r} is a glossary name and cannot be redefined for one model")
        elif meaning(cls.name, n) is None:
            out.append(f"{cls.name}: {n!r} is neither a glossary name nor declared for this model in "
                       "recseek.models._glossary.MODEL_SPECIFIC")
    for n in specific:
        if n not in names:
            out.append(f"{cls.name}: MODEL_SPECIFIC declares {n!r}, which is not a hyperparameter of the model")
    return out


# ---------------------------------------------------------------- conventions page
def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _users(models: list[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cls in models:
        for n in cls.param_names():
            out.setdefault(n, []).append(cls.name)
    return out


def _effect_rules(models: list[Any]) -> list[str]:
    from ._params import UsedWhen

    lines = []
    for cls in models:
        for name, rule in cls.rules.items():
            if isinstance(rule, UsedWhen) and name in cls.param_names():
                values = " or ".join(repr(v) for v in rule.values)
                lines.append(f"| {cls.name} | `{name}` | `{rule.other}` is {values} |")
    return lines


def render_conventions() -> str:
    """The Markdown of ``docs/conventions.md``, generated from this module and the registry."""
    from .registry import available

    models = available()
    users = _users(models)
    out = [
        "# Hyperparameter conventions",
        "",
        f"<!-- Generated by `{REGENERATE}`; tests/test_glossary.py checks it is current. -->",
        "",
        "Every hyperparameter of every model is a constructor keyword argument with a default.",
        "A name in the glossary below means the same thing in every model that has it; any",
        "other name belongs to one model and is defined under that model. Symbols from a paper",
        "(" + ", ".join(f"`{s}`" for s in sorted(PAPER_SYMBOLS)) + ") keep the paper's notation,",
        "so their meaning differs between models and they are always defined per model. A",
        "conformance test over the registry refuses any other name, including the synonyms",
        "listed at the end.",
        "",
        "## Glossary",
        "",
        "| name | meaning | models |",
        "|---|---|---|",
    ]
    for n, text in GLOSSARY.items():
        used = ", ".join(users.get(n, [])) or "(none yet)"
        out.append(f"| `{n}` | {_cell(text)} | {used} |")
    out += ["", "## Model-specific names", "", "| model | name | meaning |", "|---|---|---|"]
    for model in sorted(MODEL_SPECIFIC, key=str.lower):
        for n, text in MODEL_SPECIFIC[model].items():
            out.append(f"| {model} | `{n}` | {_cell(text)} |")
    out += [
        "",
        "## Settings without effect are refused",
        "",
        "Some hyperparameters only act in one mode of their model. Setting one of them to a",
        "value other than its default while the mode is off raises a `ParameterError` (the",
        "default never does):",
        "",
        "| model | name | only used when |",
        "|---|---|---|",
        *_effect_rules(models),
        "",
        "## Renamed names (deprecated)",
        "",
        "These names were used before the glossary. For one release they are still accepted by",
        "the constructors, `set_params`, `registry.create`, experiment TOML files and saved",
        "models, with a `DeprecationWarning` naming the new name.",
        "",
        "| old name | new name | models |",
        "|---|---|---|",
    ]
    for r in RENAMED:
        applies = ", ".join(r.models) if r.models else "every model with `" + r.new + "`"
        out.append(f"| `{r.old}` | `{r.new}` | {applies} |")
    out += ["", "## Refused synonyms", "", "| synonym | use |", "|---|---|"]
    for s, n in SYNONYMS.items():
        out.append(f"| `{s}` | `{n}` |")
    return "\n".join(out) + "\n"

