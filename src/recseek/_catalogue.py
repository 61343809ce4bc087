"""What ``recseek models`` lists, without importing the models.

Importing the models pulls in scipy and numba (seconds); listing them should not. This
table mirrors the registry's metadata (name, task, family, paper of every registered
model); ``tests/test_cli.py`` checks it against :func:`recseek.models.registry.available`,
so a model added, renamed or re-described must be entered here too.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    """One registered model as listed by ``recseek models``."""

    name: str
    task: str
    family: str
    paper: str


CATALOGUE: tuple[Entry, ...] = (
    Entry('AoBPR', 'ranking', 'ranking',
          'Rendle, Freudenthaler. Improving Pairwise Learning for Item Recommendation from Implicit Feedback. WSDM 2014'),
    Entry('AssociationRule', 'ranking', 'neighborhood',
          'Lin, Alvarez, Ruiz. Efficient adaptive-support association rule mining for recommender systems. Data Mining and Knowledge Discovery 2002'),
    Entry('ASVDPlusPlus', 'rating', 'factorization',
          'Koren. Factorization Meets the Neighborhood: a Multifaceted Collaborative Filtering Model. KDD 2008'),
    Entry('BiasedMF', 'rating', 'factorization',
          'Koren, Bell & Volinsky. Matrix Factorization Techniques for Recommender Systems. IEEE Computer, 2009'),
    Entry('BPMF', 'rating', 'factorization',
          'Salakhutdinov & Mnih. Bayesian Probabilistic Matrix Factorization using Markov Chain Monte Carlo. ICML 2008'),
    Entry('BPR', 'ranking', 'ranking',
          'Rendle, Freudenthaler, Gantner, Schmidt-Thieme. BPR: Bayesian Personalized Ranking from Implicit Feedback. UAI 2009'),
    Entry('CCD', 'rating', 'factorization',
          'Yu, Hsieh, Si & Dhillon. Scalable Coordinate Descent Approaches to Parallel Matrix Factorization for Recommender Systems. ICDM 2012'),
    Entry('CLiMF', 'ranking', 'ranking',
          'Shi, Karatzoglou, Baltrunas, Larson, Oliver, Hanjalic. CLiMF: Learning to Maximize Reciprocal Rank with Collaborative Less-is-More Filtering. RecSys 2012'),
    Entry('ConstantGuess', 'rating', 'baseline',
          'JStarCraft RNS benchmark baseline'),
    Entry('EALS', 'ranking', 'factorization',
          'X. He, H. Zhang, M.-Y. Kan, T.-S. Chua: Fast Matrix Factorization for Online Recommendation with Implicit Feedback, SIGIR 2016'),
    Entry('EASE', 'ranking', 'linear',
          'Steck. Embarrassingly shallow autoencoders for sparse data. WWW 2019'),
    Entry('FFM', 'rating', 'factorization',
          'Juan, Zhuang, Chin & Lin. Field-aware Factorization Machines for CTR Prediction. RecSys 2016'),
    Entry('FISMAUC', 'ranking', 'factorization',
          'Kabbur, Ning, Karypis. FISM: factored item similarity models for top-N recommender systems. KDD 2013'),
    Entry('FISMRMSE', 'ranking', 'factorization',
          'Kabbur, Ning, Karypis. FISM: factored item similarity models for top-N recommender systems. KDD 2013'),
    Entry('FMALS', 'rating', 'factorization',
          'Rendle, Gantner, Freudenthaler & Schmidt-Thieme. Fast Context-aware Recommendations with Factorization Machines. SIGIR 2011'),
    Entry('FMSGD', 'rating', 'factorization',
          'Rendle. Factorization Machines. ICDM 2010'),
    Entry('GBPR', 'ranking', 'ranking',
          'Pan, Chen. GBPR: Group Preference Based Bayesian Personalized Ranking for One-Class Collaborative Filtering. IJCAI 2013'),
    Entry('GlobalAverage', 'rating', 'baseline',
          'JStarCraft RNS benchmark baseline'),
    Entry('IALSPlusPlus', 'ranking', 'factorization',
          'S. Rendle, W. Krichene, L. Zhang, Y. Koren: iALS++: Speeding up Matrix Factorization with Subspace Optimization, arXiv:2110.14044, 2021'),
    Entry('IRRG', 'rating', 'factorization',
          'Zhao, Guo, Zhang, Lu, Zhao. Exploiting implicit item relationships for recommender systems. UMAP 2015'),
    Entry('ItemAverage', 'rating', 'baseline',
          'JStarCraft RNS benchmark baseline'),
    Entry('ItemCluster', 'rating', 'baseline',
          'Ungar & Foster, Clustering Methods for Collaborative Filtering, AAAI Workshop 1998'),
    Entry('ItemKNNRanking', 'ranking', 'neighborhood',
          'Sarwar, Karypis, Konstan, Riedl. Item-based collaborative filtering recommendation algorithms. WWW 2001'),
    Entry('ItemKNNRating', 'rating', 'neighborhood',
          'Sarwar, Karypis, Konstan, Riedl. Item-based collaborative filtering recommendation algorithms. WWW 2001'),
    Entry('KNNBaseline', 'rating', 'neighborhood',
          'Koren. Factor in the neighbors: scalable and accurate collaborative filtering. ACM TKDD 2010'),
    Entry('ListwiseMF', 'ranking', 'ranking',
          'Shi, Larson, Hanjalic. List-wise Learning to Rank with Matrix Factorization for Collaborative Filtering. RecSys 2010'),
    Entry('LLORMA', 'rating', 'factorization',
          'Lee, Kim, Lebanon & Singer. Local Low-Rank Matrix Approximation. ICML 2013'),
    Entry('MFALS', 'rating', 'factorization',
          'Zhou, Wilkinson, Schreiber & Pan. Large-Scale Parallel Collaborative Filtering for the Netflix Prize. AAIM 2008'),
    Entry('MostPopular', 'ranking', 'baseline',
          'JStarCraft RNS benchmark baseline (popularity)'),
    Entry('NMF', 'rating', 'factorization',
          'Lee & Seung. Algorithms for Non-negative Matrix Factorization. NIPS 2001'),
    Entry('PersonalityDiagnosis', 'rating', 'neighborhood',
          'Pennock, Horvitz, Lawrence, Giles. Collaborative filtering by personality diagnosis: a hybrid memory- and model-based approach. UAI 2000'),
    Entry('PMF', 'rating', 'factorization',
          'Salakhutdinov & Mnih. Probabilistic Matrix Factorization. NIPS 2007'),
    Entry('PRankD', 'ranking', 'factorization',
          'Hurley. Personalised ranking with diversity. RecSys 2013'),
    Entry('PureSVD', 'ranking', 'factorization',
          'Cremonesi, Koren, Turrin. Performance of recommender algorithms on top-N recommendation tasks. RecSys 2010'),
    Entry('RandomGuess', 'rating', 'baseline',
          'JStarCraft RNS benchmark baseline'),
    Entry('RankALS', 'ranking', 'ranking',
          'G. Takacs, D. Tikk: Alternating Least Squares for Personalized Ranking, RecSys 2012'),
    Entry('RankSGD', 'ranking', 'ranking',
          'Jahrer, Töscher. Collaborative Filtering Ensemble for Ranking. JMLR Workshop and Conference Proceedings 18 (KDD Cup 2011), 2012'),
    Entry('RFRec', 'rating', 'linear',
          'Gedikli, Bagdat, Ge, Jannach. RF-Rec: fast and accurate computation of recommendations based on rating frequencies. IEEE CEC 2011'),
    Entry('RP3beta', 'ranking', 'neighborhood',
          'Paudel, Christoffel, Newell, Bernstein. Updatable, accurate, diverse, and scalable recommendations for interactive applications. ACM TiiS 2017'),
    Entry('SLIM', 'ranking', 'linear',
          'Ning, Karypis. SLIM: sparse linear methods for top-N recommender systems. ICDM 2011'),
    Entry('SlopeOne', 'rating', 'neighborhood',
          'Lemire, Maclachlan. Slope One predictors for online rating-based collaborative filtering. SDM 2005'),
    Entry('SVDPlusPlus', 'rating', 'factorization',
          'Koren. Factorization Meets the Neighborhood: a Multifaceted Collaborative Filtering Model. KDD 2008'),
    Entry('UserAverage', 'rating', 'baseline',
          'JStarCraft RNS benchmark baseline'),
    Entry('UserCluster', 'rating', 'baseline',
          'Ungar & Foster, Clustering Methods for Collaborative Filtering, AAAI Workshop 1998'),
    Entry('UserKNNRanking', 'ranking', 'neighborhood',
          'Resnick, Iacovou, Suchak, Bergstrom, Riedl. GroupLens: an open architecture for collaborative filtering of netnews. CSCW 1994'),
    Entry('UserKNNRating', 'rating', 'neighborhood',
          'Resnick, Iacovou, Suchak, Bergstrom, Riedl. GroupLens: an open architecture for collaborative filtering of netnews. CSCW 1994'),
    Entry('WARPMF', 'ranking', 'ranking',
          'Weston, Bengio, Usunier. WSABIE: Scaling Up To Large Vocabulary Image Annotation. IJCAI 2011'),
    Entry('WBPR', 'ranking', 'ranking',
          'Gantner, Drumond, Freudenthaler, Schmidt-Thieme. Bayesian Personalized Ranking for Non-Uniformly Sampled Items. JMLR Workshop and Conference Proceedings 18 (KDD Cup 2011), 2012'),
    Entry('WRMF', 'ranking', 'factorization',
          'Y. Hu, Y. Koren, C. Volinsky: Collaborative Filtering for Implicit Feedback Datasets, ICDM 2008; G. Takacs, I. Pilaszy, D. Tikk: Applications of the Conjugate Gradient Method for Implicit Feedback Collaborative Filtering, RecSys 2011'),
)



def entries(task: str | None = None) -> list[Entry]:
    """Catalogue entries (of one task when given), sorted by name like the registry."""
    return sorted((e for e in CATALOGUE if task is None or e.task == task), key=lambda e: e.name.lower())
