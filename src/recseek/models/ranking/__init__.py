"""SGD ranking factorization models: pairwise (BPR family, RankSGD, WARP) and listwise
(CLiMF, ListwiseMF) objectives over implicit feedback."""
