"""Social recommenders: rating and ranking models that also learn from a user-user trust
graph (``Interactions.trust``): SoRec, SoReg, SocialMF, TrustMF, TrustSVD, RSTE and SBPR.

Every model declares ``requires = ("trust",)``. Users with trust links but no ratings
(the social cold start) are served through ``recommend_for_trust``.
"""
