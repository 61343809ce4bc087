"""Neural recommenders on torch (the optional ``neural`` extra: ``pip install 'recseek[neural]'``).

Importing this package does not import torch; a model imports it when it is fitted. Saved
models are npz + JSON like every other model, and score without torch.
"""
